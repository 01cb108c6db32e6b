// Reconnecting SSE clients for bench/cluster failover.
//   node sse-failover.mjs PORT BOARD COUNT OUT
// Opens COUNT streams to GET /boards/BOARD/events (alice), each of which, as
// an EventSource does, reconnects at once with Last-Event-ID when its stream
// ends or fails. Prints "READY ok=N" once every stream has its `connected`
// event. SIGUSR1 writes
// OUT (JSON) and exits: per stream the ids received and the times (CLOCK_
// MONOTONIC ms) of every `connected` event and of every cut.
import http from 'node:http';
import fs from 'node:fs';

const [port, board, countS, out] = process.argv.slice(2);
const count = +countS;
const auth = 'Basic ' + Buffer.from('alice:alice').toString('base64');
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const streams = [];
let ready = 0;

function open(s) {
    const req = http.get({ host: '127.0.0.1', port: +port, path: `/boards/${board}/events`,
        agent: false, headers: { Authorization: auth, Accept: 'text/event-stream',
            'Last-Event-ID': String(s.last) } }, (res) => {
        if (res.statusCode !== 200) { res.resume(); res.on('end', () => again(s)); return; }
        res.setEncoding('utf8');
        let buf = '', ev = {};
        res.on('data', (chunk) => {
            buf += chunk;
            let i;
            while ((i = buf.indexOf('\n')) >= 0) {
                let line = buf.slice(0, i);
                buf = buf.slice(i + 1);
                if (line.endsWith('\r')) line = line.slice(0, -1);
                if (line === '') {
                    if (ev.id !== undefined && ev.type !== 'reset' && ev.type !== 'reconnect') {
                        s.ids.push(+ev.id);
                        s.last = +ev.id;
                    } else if (ev.data && ev.data.includes('"type":"connected"')) {
                        s.opens.push(nowMs());
                        if (!s.ready) { s.ready = true; if (++ready === count) console.log(`READY ok=${ready}`); }
                    }
                    ev = {};
                } else if (line.startsWith('id:')) ev.id = line.slice(3).trim();
                else if (line.startsWith('event:')) ev.type = line.slice(6).trim();
                else if (line.startsWith('data:')) ev.data = line.slice(5).trim();
            }
        });
        res.on('end', () => again(s));
        res.on('error', () => again(s));
    });
    req.on('error', () => again(s));
}

function again(s) {
    if (s.retrying) return;
    s.retrying = true;
    s.cuts.push(nowMs());
    setTimeout(() => { s.retrying = false; open(s); }, 50); // EventSource's retry, shortened
}

for (let i = 0; i < count; i++) {
    const s = { ids: [], opens: [], cuts: [], last: 0, ready: false, retrying: false };
    streams.push(s);
    setTimeout(() => open(s), i % 200); // spread the handshakes a little
}

process.on('SIGUSR1', () => {
    fs.writeFileSync(out, JSON.stringify({ streams: streams.map((s) => ({
        ids: s.ids, opens: s.opens, cuts: s.cuts })) }));
    process.exit(0);
});
