// Delivery report for bench/fanout and bench/ws.
//   node report.mjs PUBLISH.json CLIENT.json...
// Latency of an event at a client = its arrival there minus t0, the moment
// just before the publishing POST was written (both CLOCK_MONOTONIC).
//   node report.mjs storm TOTAL PUBLISH.json|- STORM.json...
// Presence storm summary: whether every client ended with the same count and
// first page, when, after how many presence messages, and the latency of the
// task events published during the storm.
import fs from 'node:fs';

if (process.argv[2] === 'storm') {
    storm(+process.argv[3], process.argv[4], process.argv.slice(5));
    process.exit(0);
}

function storm(total, pubFile, files) {
    const parts = files.map((f) => JSON.parse(fs.readFileSync(f)));
    const add = (k) => parts.reduce((a, p) => a + p[k], 0);
    const merge = (k) => {
        const o = {};
        for (const p of parts) for (const [h, n] of Object.entries(p[k])) o[h] = (o[h] || 0) + n;
        return o;
    };
    const pagesSeen = merge('pages'), finalCounts = merge('finalCounts'), counts = merge('counts');
    const clients = add('clients'), full = add('full');
    const msgs = parts.flatMap((p) => p.msgs).sort((a, b) => a - b);
    const bytes = parts.flatMap((p) => p.bytes).sort((a, b) => a - b);
    const t0 = Math.min(...parts.map((p) => p.t0Abs));
    const lastJoin = Math.max(...parts.map((p) => p.lastJoinAbs));
    const counted = Math.max(...parts.map((p) => p.tCountMaxAbs));
    const pct = (a, q) => (a.length ? a[Math.min(a.length - 1, Math.max(0, Math.ceil(q / 100 * a.length) - 1))] : NaN);
    console.log(`storm: ${clients} clients (distinct users), joined ${add('joined')}, failed ${add('failed')} ` +
        `${JSON.stringify(merge('failReasons'))}; settled by ${parts.map((p) => p.settledBy).join(',')}`);
    console.log(`storm timing: last join ${(lastJoin - t0).toFixed(0)} ms after the first connect; ` + (full === clients
        ? `every client had the final count ${total} at ${(counted - t0).toFixed(0)} ms, ` +
          `${(counted - lastJoin).toFixed(0)} ms after the last join`
        : `${full} of ${clients} clients reached the count ${total}`));
    console.log(`storm presence messages received: ${JSON.stringify(counts)}; total ${msgs.reduce((a, x) => a + x, 0)}; ` +
        `per client median ${pct(msgs, 50)} p99 ${pct(msgs, 99)} max ${msgs[msgs.length - 1]}; ` +
        `bytes per client median ${pct(bytes, 50)} max ${bytes[bytes.length - 1]}; client CPU ${add('cpuMs')} ms`);
    console.log(`storm views: final counts ${JSON.stringify(finalCounts)}; ${Object.keys(pagesSeen).length} distinct first pages`);
    if (pubFile && pubFile !== '-' && fs.existsSync(pubFile)) {
        const pub = JSON.parse(fs.readFileSync(pubFile));
        const lat = [];
        let got = 0;
        for (const s of pub.sends) {
            for (const p of parts) for (const t of p.arrivals[s.id] || []) { lat.push(t - s.t0); got++; }
        }
        lat.sort((a, b) => a - b);
        console.log(`storm events: ${pub.sends.length} task events published during the storm (statuses ` +
            `${JSON.stringify(pub.sends.reduce((m, x) => (m[x.status] = (m[x.status] || 0) + 1, m), {}))}), ` +
            `${got} deliveries; latency from just before the POST p50 ${pct(lat, 50).toFixed(1)} ` +
            `p99 ${pct(lat, 99).toFixed(1)} max ${lat.length ? lat[lat.length - 1].toFixed(1) : '-'} ms`);
    }
    console.log(`RESULT ${full} of ${clients} clients ended with the count ${total}, ` +
        `${Object.keys(pagesSeen).length === 1 && full === clients ? 'ALL with one identical first page' : 'NOT ALL identical'}`);
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
