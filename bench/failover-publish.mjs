// Publisher for bench/cluster failover: node failover-publish.mjs PORT BOARD COUNT INTERVAL_MS
// Creates COUNT tasks on BOARD, one every INTERVAL_MS, each retried with its
// own Idempotency-Key until it is stored (a node under a reconnect storm
// may close an idle keep-alive connection). Prints how many retries it took.
import http from 'node:http';

const [port, board, countS, intervalS] = process.argv.slice(2);
const auth = 'Basic ' + Buffer.from('alice:alice').toString('base64');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const snap = await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: +port, path: `/boards/${board}`,
        headers: { Authorization: auth } }, (res) => {
        let b = '';
        res.on('data', (c) => { b += c; });
        res.on('end', () => resolve(JSON.parse(b)));
    }).on('error', reject);
});
const list = snap.data.lists[0].id;

function post(key, title) {
    return new Promise((resolve) => {
        const body = JSON.stringify({ listId: list, title });
        const req = http.request({ host: '127.0.0.1', port: +port, method: 'POST', agent: false,
            path: `/boards/${board}/tasks`, headers: { Authorization: auth, 'Content-Type':
            'application/json', 'Idempotency-Key': key } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
        });
        req.setTimeout(10000, () => req.destroy());
        req.on('error', () => resolve(0));
        req.end(body);
    });
}

let retries = 0;
for (let i = 0; i < +countS; i++) {
    const key = `failover-${process.pid}-${i}`;
    while ((await post(key, `f${i}`)) !== 201) { retries++; await sleep(20); }
    await sleep(+intervalS);
}
console.log(`published ${countS} events, ${retries} retries`);
