// Publishes board events through REST, for bench/fanout and bench/ws.
//   node publish.mjs PORT BOARD COUNT INTERVAL_MS OUT [USER:PASS]
// Creates COUNT tasks on BOARD, one every INTERVAL_MS, over one keep-alive
// connection. For each it records t0 (CLOCK_MONOTONIC ms just before the
// request is written) and t1 (when the whole answer has arrived). The board
// must have no other writer meanwhile: event i is then id base+i.
// With env PUB_PATH (bench/nchan-fanout) it POSTs {"id":i,...} there instead,
// with ids from 1.
import http from 'node:http';
import fs from 'node:fs';

const [port, board, countS, intervalS, out, cred = 'alice:alice'] = process.argv.slice(2);
const count = +countS, interval = +intervalS;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const headers = { Authorization: 'Basic ' + Buffer.from(cred).toString('base64') };
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function call(method, path, body, extra = {}) {
    return new Promise((resolve, reject) => {
        const h = { ...headers, ...extra };
        if (body) h['Content-Type'] = 'application/json';
        const t0 = nowMs();
        const req = http.request({ host: '127.0.0.1', port: +port, method, path, headers: h, agent },
            (res) => {
                const parts = [];
                res.on('data', (c) => parts.push(c));
                res.on('end', () => resolve({ status: res.statusCode, t0, t1: nowMs(),
                    body: Buffer.concat(parts).toString() }));
            });
        req.setTimeout(10000, () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
        req.on('error', reject);
        req.end(body);
    });
}

const pubPath = process.env.PUB_PATH;
const snap = pubPath ? null : JSON.parse((await call('GET', `/boards/${board}`)).body);
const base = pubPath ? 0 : snap.lastEventId;
const listId = pubPath ? 0 : snap.data.lists[0].id;
const sends = [];
const start = nowMs();
for (let i = 1; i <= count; i++) {
    const due = start + (i - 1) * interval;
    const wait = due - nowMs();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // a keep-alive connection the server closed under load is retried on a new one;
    // the Idempotency-Key makes the retry publish no second event
    const key = { 'Idempotency-Key': `publish-${process.pid}-${i}` };
    const post = () => (pubPath
        ? call('POST', pubPath, JSON.stringify({ id: i, type: 'task_created', boardId: board,
            data: { task: { title: `fan-out event ${i}` } } }))
        : call('POST', `/boards/${board}/tasks`,
            JSON.stringify({ listId, title: `fan-out event ${i}` }), key));
    const t0 = nowMs();
    let r = null, retried = 0;
    while (!r) {
        try {
            r = await post();
        } catch (e) {
            if (e.code !== 'ECONNRESET' || retried >= 10) throw e;
            retried++;
            await new Promise((res) => setTimeout(res, 50));
        }
    }
    sends.push({ i, id: base + i, status: r.status, t0: retried ? t0 : r.t0, t1: r.t1, retried });
}
const last = pubPath ? count : JSON.parse((await call('GET', `/boards/${board}`)).body).lastEventId;
fs.writeFileSync(out, JSON.stringify({ base, last, sends }));
agent.destroy();
