// Delivery report for bench/fanout and bench/ws.
//   node report.mjs PUBLISH.json CLIENT.json...
// Latency of an event at a client = its arrival there minus t0, the moment
// just before the publishing POST was written (both CLOCK_MONOTONIC).
//   node report.mjs storm TOTAL STORM.json...
// Presence storm summary: how many clients ended with the same, full set.
import fs from 'node:fs';

if (process.argv[2] === 'storm') {
    storm(+process.argv[3], process.argv.slice(4));
    process.exit(0);
}

function storm(total, files) {
    const parts = files.map((f) => JSON.parse(fs.readFileSync(f)));
    const add = (k) => parts.reduce((a, p) => a + p[k], 0);
    const views = {}, sizes = {}, counts = {}, failReasons = {};
    for (const p of parts) {
        for (const [h, n] of Object.entries(p.views)) views[h] = (views[h] || 0) + n;
        for (const [h, n] of Object.entries(p.sizes)) sizes[h] = (sizes[h] || 0) + n;
        for (const [h, n] of Object.entries(p.counts)) counts[h] = (counts[h] || 0) + n;
        for (const [h, n] of Object.entries(p.failReasons)) failReasons[h] = (failReasons[h] || 0) + n;
    }
    const clients = add('clients'), full = add('full');
    console.log(`storm: ${clients} clients (distinct users), joined ${add('joined')}, failed ${add('failed')} ` +
        `${JSON.stringify(failReasons)}; settled by ${parts.map((p) => p.settledBy).join(',')} ` +
        `(${add('barriers')} got the barrier event) ${Math.max(...parts.map((p) => p.settleMs))} ms after the ` +
        `first connect; last presence message at ${Math.max(...parts.map((p) => p.lastPresenceMs))} ms`);
    console.log(`storm messages received: ${JSON.stringify(counts)}; client CPU ${add('cpuMs')} ms`);
    console.log(`storm views: ${Object.keys(views).length} distinct; set sizes ${JSON.stringify(sizes)}`);
    const left = {};
    for (const p of parts) for (const [u, n] of p.leftUsers || []) left[u] = (left[u] || 0) + n;
    const leftTop = Object.entries(left).sort((a, b) => b[1] - a[1]).slice(0, 5);
    if (leftTop.length) console.log(`storm user_left received, by user (top 5): ${JSON.stringify(leftTop)}`);
    const missing = parts.flatMap((p) => p.missingUsers);
    if (missing.length) console.log(`storm users most often missing from a view: ${JSON.stringify(missing.slice(0, 5))}`);
    console.log(`RESULT ${full} of ${clients} clients ended with the full, identical set of ${total} users ` +
        `(${Object.keys(views).length === 1 && full === clients ? 'ALL' : 'NOT ALL'})`);
}

const [pubFile, ...clientFiles] = process.argv.slice(2);
const pub = JSON.parse(fs.readFileSync(pubFile));
const clients = clientFiles.map((f) => JSON.parse(fs.readFileSync(f)));

const pct = (sorted, p) => sorted.length
    ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]
    : NaN;
const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');

const expected = clients.reduce((a, c) => a + c.ok, 0);
const bases = [...new Set(clients.flatMap((c) => c.bases))];
const all = [], fromResp = [];
console.log(`events published: ${pub.sends.length} (ids ${pub.base + 1}..${pub.base + pub.sends.length}), ` +
    `POST statuses: ${JSON.stringify(pub.sends.reduce((m, s) => (m[s.status] = (m[s.status] || 0) + 1, m), {}))}, ` +
    `board lastEventId after: ${pub.last}; client start ids: ${bases.join(',')}`);
const rtt = pub.sends.map((s) => s.t1 - s.t0).sort((a, b) => a - b);
console.log(`POST round trip ms: p50 ${f(pct(rtt, 50))} max ${f(rtt[rtt.length - 1])}`);
console.log('latency ms from just before the POST was sent, per event:');
pub.sends.forEach((s, k) => {
    const lat = clients.flatMap((c) => (c.arrivals[k] || []).map((t) => t - s.t0)).sort((a, b) => a - b);
    for (const x of lat) all.push(x);
    for (const c of clients) for (const t of c.arrivals[k] || []) fromResp.push(t - s.t1);
    console.log(`  id ${s.id}: got ${lat.length}/${expected}  p50 ${f(pct(lat, 50))}  p99 ${f(pct(lat, 99))}  ` +
        `max ${f(lat[lat.length - 1])}`);
});
all.sort((a, b) => a - b);
fromResp.sort((a, b) => a - b);
console.log(`OVERALL latency ms (${all.length} deliveries): p50 ${f(pct(all, 50))}  p99 ${f(pct(all, 99))}  ` +
    `max ${f(all[all.length - 1])}`);
console.log(`  (same, counted from the POST's answer instead: p50 ${f(pct(fromResp, 50))}  ` +
    `p99 ${f(pct(fromResp, 99))}  max ${f(fromResp[fromResp.length - 1])})`);
const sum = (k) => clients.reduce((a, c) => a + (c[k] || 0), 0);
const perfect = sum('perfect');
console.log(`delivery: ${expected} clients connected, ${perfect} got every event exactly once in order; ` +
    `missing ${sum('missing')}, duplicates ${sum('dup')}, out of order ${sum('outOfOrder')}, ` +
    `unexpected ids ${sum('unexpected')}, closed by server ${sum('closedAfterOpen')}`);
console.log(`client CPU while receiving (all client processes): ${sum('cpuMs')} ms`);
console.log(`RESULT ${perfect === expected && expected > 0 ? 'ALL' : 'NOT ALL'} clients got all ` +
    `${pub.sends.length} events once in order; overall p50 ${f(pct(all, 50))} ms p99 ${f(pct(all, 99))} ms ` +
    `max ${f(all[all.length - 1])} ms`);
