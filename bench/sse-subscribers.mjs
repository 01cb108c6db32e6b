// SSE subscribers on raw `net` sockets, for bench/fanout.
//   node sse-subscribers.mjs PORT BOARD COUNT EVENTS OUT [USER:PASS] [PARALLEL]
// Opens COUNT streams to GET /boards/BOARD/events, at most PARALLEL (200)
// handshakes at a time, and prints "READY ok=N failed=M" once every stream
// has its `connected` event (or failed). Each stream then records the
// arrival time (CLOCK_MONOTONIC, ms, the same clock in every process) of
// every event id. It prints "COMPLETE" when every stream has EVENTS events,
// and writes OUT (JSON) and exits on SIGUSR1/SIGTERM. Prints "PROGRESS ok=N
// failed=M" every second while connecting; SIGUSR2 abandons the streams
// still waiting for their `connected` event (counted as failed, "abandoned").
// For another server (bench/nchan-fanout), env SSE_PATH replaces the path,
// SSE_READY=headers counts a stream as connected on its 200 header, and
// SSE_IDS=data takes each event's id from the "id" of its JSON data.
import net from 'node:net';
import { cpuMs, nowMs, record, streamFields, writeReport } from './tally.mjs';

const [port, board, countS, eventsS, out, cred = 'alice:alice', parS = '200'] =
    process.argv.slice(2);
const count = +countS, events = +eventsS, parallel = +parS;
const auth = Buffer.from(cred).toString('base64');
const path = process.env.SSE_PATH || `/boards/${board}/events`;
const readyOnHeaders = process.env.SSE_READY === 'headers';
const idsFromData = process.env.SSE_IDS === 'data';
const request = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
    `Authorization: Basic ${auth}\r\nAccept: text/event-stream\r\n\r\n`;

const subs = [];
let started = 0, pending = 0, ok = 0, failed = 0, ready = false, complete = 0, closed = 0;
const failReasons = {};
// arrivals[eventIndex] = array of ms, one per stream that got it
const arrivals = Array.from({ length: events }, () => []);

function fail(s, why) {
    if (s.state === 'failed') return;
    const was = s.state;
    s.state = 'failed';
    failReasons[why] = (failReasons[why] || 0) + 1;
    if (was === 'connecting') { failed++; pending--; pump(); }
    else closed++;
    s.sock.destroy();
}

function opened(s, base) {
    s.base = base;
    s.state = 'open';
    s.opened = true;
    ok++; pending--;
    pump();
}

function onEvent(s, ev) {
    if (idsFromData) {
        const m = ev.data && /"id":(\d+)/.exec(ev.data);
        ev.id = m ? m[1] : undefined;
    }
    if (ev.id === undefined) {
        if (s.state === 'connecting' && ev.data && ev.data.includes('"connected"')) {
            const m = /"lastEventId":(\d+)/.exec(ev.data);
            opened(s, m ? +m[1] : 0);
        }
        return;
    }
    const id = +ev.id;
    if (record(s, id, nowMs(), events, arrivals)) {
        complete++;
        // the report waits for SIGUSR1, so that writing it does not take CPU
        // from the other client processes still receiving
        if (ready && complete === ok) console.log('COMPLETE');
    }
}

// SSE text -> events (lines; blank line dispatches)
function feedText(s, text) {
    s.text += text;
    let i;
    while ((i = s.text.indexOf('\n')) >= 0) {
        let line = s.text.slice(0, i);
        s.text = s.text.slice(i + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
            if (s.ev.data !== undefined || s.ev.id !== undefined) onEvent(s, s.ev);
            s.ev = {};
        } else if (line[0] === ':') {
            // comment (heartbeat)
        } else {
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            let value = c < 0 ? '' : line.slice(c + 1);
            if (value[0] === ' ') value = value.slice(1);
            if (field === 'data') s.ev.data = s.ev.data === undefined ? value : s.ev.data + '\n' + value;
            else if (field === 'id') s.ev.id = value;
            else if (field === 'event') s.ev.type = value;
        }
    }
}

// body bytes -> text, undoing chunked transfer coding when present
function feedBody(s, buf) {
    if (!s.chunked) return feedText(s, buf.toString('utf8'));
    s.cbuf = s.cbuf.length ? Buffer.concat([s.cbuf, buf]) : buf;
    for (;;) {
        if (s.crem > 0) {
            const n = Math.min(s.crem, s.cbuf.length);
            if (n === 0) return;
            feedText(s, s.cbuf.subarray(0, n).toString('utf8'));
            s.cbuf = s.cbuf.subarray(n);
            s.crem -= n;
            if (s.crem === 0) s.crem = -2; // expect CRLF
            continue;
        }
        if (s.crem === -2) {
            if (s.cbuf.length < 2) return;
            s.cbuf = s.cbuf.subarray(2);
            s.crem = 0;
            continue;
        }
        const e = s.cbuf.indexOf('\r\n');
        if (e < 0) return;
        const size = parseInt(s.cbuf.subarray(0, e).toString(), 16);
        s.cbuf = s.cbuf.subarray(e + 2);
        if (size === 0) return fail(s, 'stream ended');
        s.crem = size;
    }
}

function open() {
    const s = {
        state: 'connecting', head: Buffer.alloc(0), chunked: false, cbuf: Buffer.alloc(0),
        crem: 0, text: '', ev: {}, opened: false, ...streamFields(),
    };
    subs.push(s);
    started++; pending++;
    s.sock = net.connect({ port: +port, host: '127.0.0.1' });
    s.sock.setNoDelay(true);
    s.sock.on('connect', () => s.sock.write(request));
    s.sock.on('data', (buf) => {
        if (s.state === 'failed') return;
        if (s.head !== null) {
            s.head = Buffer.concat([s.head, buf]);
            const e = s.head.indexOf('\r\n\r\n');
            if (e < 0) return;
            const head = s.head.subarray(0, e).toString('latin1');
            const rest = s.head.subarray(e + 4);
            s.head = null;
            const status = +head.split(' ')[1];
            if (status !== 200) return fail(s, `HTTP ${status}`);
            s.chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
            if (readyOnHeaders) opened(s, 0);
            if (rest.length) feedBody(s, rest);
            return;
        }
        feedBody(s, buf);
    });
    s.sock.on('error', (e) => fail(s, e.code || String(e)));
    s.sock.on('close', () => fail(s, 'closed by server'));
}

function pump() {
    while (started < count && pending < parallel) open();
    if (!ready && started === count && pending === 0) {
        ready = true;
        cpuAtReady = cpuMs();
        console.log(`READY ok=${ok} failed=${failed} at=${Date.now()} cpu=${Math.round(cpuAtReady)} reasons=${JSON.stringify(failReasons)}`);
        if (ok === 0 || (events === 0)) finish();
    }
}

let finished = false, cpuAtReady = 0;
function finish() {
    if (finished) return;
    finished = true;
    writeReport(out, subs, events, arrivals, { streams: count, ok, failed,
        closedAfterOpen: closed, failReasons, cpuMs: cpuMs() - cpuAtReady });
    for (const s of subs) s.sock.destroy();
    process.exit(0);
}

function abandon() {
    started = count;
    for (const s of subs) if (s.state === 'connecting') fail(s, 'abandoned');
    pump();
}

const progress = setInterval(() => {
    if (ready) return clearInterval(progress);
    console.log(`PROGRESS ok=${ok} failed=${failed} pending=${pending}`);
}, 1000);

process.on('SIGUSR2', abandon);
process.on('SIGUSR1', finish);
process.on('SIGTERM', finish);
pump();
