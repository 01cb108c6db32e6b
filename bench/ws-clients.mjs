// WebSocket clients (npm `ws`) for bench/ws.
//
//   node ws-clients.mjs fanout PORT BOARD COUNT EVENTS OUT [USER:PASS] [PARALLEL]
// Opens COUNT sockets to GET /boards/BOARD/ws, at most PARALLEL (200)
// handshakes at a time; prints PROGRESS lines, then "READY ok=N failed=M"
// once every socket has its `joined` message (or failed). Each socket then
// records the arrival time (CLOCK_MONOTONIC ms) of every board event (the
// messages with an "id"). Prints "COMPLETE" when every socket has EVENTS
// events; writes OUT and exits on SIGUSR1/SIGTERM; SIGUSR2 abandons sockets
// still waiting for `joined`.
//
//   node ws-clients.mjs storm PORT BOARD FIRST COUNT TOTAL SPREAD_MS OUT
// Connects users user<FIRST>..user<FIRST+COUNT-1> (password: the name), one
// socket each, spread evenly over SPREAD_MS, and keeps each one's view of the
// board's presence: a `presence` message replaces the set, `user_joined` adds, When every socket has joined and no presence message
// has arrived for QUIET ms (env, 3000), or after 90 s, prints "SETTLED", and
// on SIGUSR1 writes OUT: how many sockets see exactly user0..user<TOTAL-1>,
// and a histogram of the views. SIGTERM closes them all and exits.
import WebSocket from 'ws';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { cpuMs, nowMs, record, streamFields, writeReport } from './tally.mjs';

const mode = process.argv[2];
const basic = (cred) => 'Basic ' + Buffer.from(cred).toString('base64');

function connect(port, board, cred) {
    return new WebSocket(`ws://127.0.0.1:${port}/boards/${board}/ws`, {
        headers: { Authorization: basic(cred) },
        perMessageDeflate: false,
        handshakeTimeout: 60000,
    });
}

if (mode === 'fanout') fanout(process.argv.slice(3));
else if (mode === 'storm') storm(process.argv.slice(3));
else {
    console.error('usage: ws-clients.mjs fanout|storm ...');
    process.exit(2);
}

function fanout([port, board, countS, eventsS, out, cred = 'alice:alice', parS = '200']) {
    const count = +countS, events = +eventsS, parallel = +parS;
    const socks = [];
    const arrivals = Array.from({ length: events }, () => []);
    const failReasons = {};
    let started = 0, pending = 0, ok = 0, failed = 0, closed = 0, complete = 0;
    let ready = false, finished = false, cpuAtReady = 0;

    function fail(s, why) {
        if (s.state === 'failed') return;
        const was = s.state;
        s.state = 'failed';
        failReasons[why] = (failReasons[why] || 0) + 1;
        if (was === 'connecting') { failed++; pending--; pump(); }
        else closed++;
        s.ws.terminate();
    }

    function open() {
        const s = { state: 'connecting', opened: false, ...streamFields() };
        socks.push(s);
        started++; pending++;
        s.ws = connect(port, board, cred);
        s.ws.on('message', (data) => {
            const t = nowMs();
            let m;
            try { m = JSON.parse(data); } catch { return fail(s, 'bad JSON'); }
            if (m.id !== undefined) {
                if (record(s, m.id, t, events, arrivals)) {
                    complete++;
                    // the report waits for SIGUSR1 (see sse-subscribers.mjs)
                    if (ready && complete === ok) console.log('COMPLETE');
                }
            } else if (m.type === 'joined' && s.state === 'connecting') {
                s.base = m.lastEventId;
                s.state = 'open';
                s.opened = true;
                ok++; pending--;
                pump();
            } else if (m.type === 'error') {
                failReasons[`error ${m.code}`] = (failReasons[`error ${m.code}`] || 0) + 1;
            }
        });
        s.ws.on('unexpected-response', (req, res) => fail(s, `HTTP ${res.statusCode}`));
        s.ws.on('error', (e) => fail(s, e.code || e.message));
        s.ws.on('close', (code) => fail(s, `closed ${code}`));
    }

    function pump() {
        while (started < count && pending < parallel) open();
        if (!ready && started === count && pending === 0) {
            ready = true;
            cpuAtReady = cpuMs();
            console.log(`READY ok=${ok} failed=${failed} reasons=${JSON.stringify(failReasons)}`);
            if (ok === 0 || events === 0) finish();
        }
    }

    function finish() {
        if (finished) return;
        finished = true;
        writeReport(out, socks, events, arrivals, { streams: count, ok, failed,
            closedAfterOpen: closed, failReasons, cpuMs: cpuMs() - cpuAtReady });
        for (const s of socks) {
            s.state = 'failed';
            s.ws.terminate();
        }
        process.exit(0);
    }

    const progress = setInterval(() => {
        if (ready) return clearInterval(progress);
        console.log(`PROGRESS ok=${ok} failed=${failed} pending=${pending}`);
    }, 1000);
    process.on('SIGUSR2', () => {
        started = count;
        for (const s of socks) if (s.state === 'connecting') fail(s, 'abandoned');
        pump();
    });
    process.on('SIGUSR1', finish);
    process.on('SIGTERM', finish);
    pump();
}

function storm([port, board, firstS, countS, totalS, spreadS, out]) {
    const first = +firstS, count = +countS, total = +totalS, spread = +spreadS;
    const expected = new Set(Array.from({ length: total }, (_, i) => `user${i}`));
    const clients = [];
    const failReasons = {};
    let joined = 0, failed = 0, lastPresence = nowMs(), done = false, settleMs = 0;
    let presences = 0, barriers = 0, lastBarrier = 0, joinedAll = false;
    const leftUsers = {};
    const counts = { presence: 0, user_joined: 0, user_left: 0, other: 0,
        joined_already_present: 0, left_not_present: 0, joined_before_presence: 0 };
    const t0 = nowMs();

    function openOne(i) {
        const user = `user${first + i}`;
        const c = { user, view: new Set(), joined: false, failed: false, gotPresence: false,
            barrier: false };
        clients.push(c);
        c.ws = connect(port, board, `${user}:${user}`);
        c.ws.on('message', (data) => {
            const m = JSON.parse(data);
            if (m.id !== undefined) {
                if (!c.barrier) { c.barrier = true; barriers++; lastBarrier = nowMs(); }
            } else if (m.type === 'presence') {
                if (!c.gotPresence) presences++;
                counts.presence++;
                c.view = new Set(m.users.map((u) => u.userId));
                c.gotPresence = true;
                lastPresence = nowMs();
            } else if (m.type === 'user_joined') {
                counts.user_joined++;
                if (!c.gotPresence) counts.joined_before_presence++;
                else if (c.view.has(m.userId)) counts.joined_already_present++;
                c.view.add(m.userId);
                lastPresence = nowMs();
            } else if (m.type === 'user_left') {
                counts.user_left++;
                leftUsers[m.userId] = (leftUsers[m.userId] || 0) + 1;
                if (!c.view.has(m.userId)) counts.left_not_present++;
                c.view.delete(m.userId);
                lastPresence = nowMs();
            } else if (m.type === 'joined') {
                if (!c.joined) { c.joined = true; joined++; }
            } else if (m.type !== 'connected') {
                counts.other++;
            }
        });
        const bad = (why) => {
            if (c.failed) return;
            c.failed = true;
            failed++;
            failReasons[why] = (failReasons[why] || 0) + 1;
        };
        c.ws.on('unexpected-response', (req, res) => bad(`HTTP ${res.statusCode}`));
        c.ws.on('error', (e) => bad(e.code || e.message));
        c.ws.on('close', (code) => bad(`closed ${code}`));
    }

    for (let i = 0; i < count; i++) setTimeout(() => openOne(i), (i * spread) / count);

    function finish(why) {
        if (done) return;
        done = true;
        let full = 0;
        const views = new Map();
        const sizes = {};
        for (const c of clients) {
            const sorted = [...c.view].sort();
            const h = crypto.createHash('sha1').update(sorted.join(',')).digest('hex').slice(0, 12);
            views.set(h, (views.get(h) || 0) + 1);
            sizes[sorted.length] = (sizes[sorted.length] || 0) + 1;
            if (!c.failed && c.view.size === expected.size && sorted.every((u) => expected.has(u))) full++;
        }
        const missingOf = {};
        for (const c of clients) {
            if (c.view.size === expected.size) continue;
            for (const u of expected) if (!c.view.has(u)) missingOf[u] = (missingOf[u] || 0) + 1;
        }
        fs.writeFileSync(out, JSON.stringify({
            clients: count, joined, failed, failReasons, full, views: Object.fromEntries(views), sizes,
            counts, settledBy: why, settleMs, barriers, lastPresenceMs: Math.round(lastPresence - t0),
            cpuMs: cpuMs(),
            missingUsers: Object.entries(missingOf).sort((a, b) => b[1] - a[1]).slice(0, 10),
            leftUsers: Object.entries(leftUsers).sort((a, b) => b[1] - a[1]).slice(0, 10),
        }));
    }

    let settled = null;
    const timer = setInterval(() => {
        const now = nowMs();
        console.log(`PROGRESS joined=${joined} failed=${failed} presence=${presences} ` +
            `barrier=${barriers} user_joined=${counts.user_joined} user_left=${counts.user_left}`);
        if (!joinedAll && clients.length === count && presences + failed >= count) {
            joinedAll = true;
            console.log(`JOINED_ALL after ${Math.round(now - t0)} ms`);
        }
        if (settled) return;
        if (joinedAll && barriers + failed >= count) settled = 'barrier';
        else if (now - t0 > 90000) settled = 'deadline';
        if (settled) {
            settleMs = Math.round((settled === 'barrier' ? lastBarrier : now) - t0);
            console.log(`SETTLED by ${settled} after ${settleMs} ms`);
            clearInterval(timer);
        }
    }, 200);
    // SIGUSR1 writes OUT and keeps the sockets; SIGTERM then closes them and exits
    process.on('SIGUSR1', () => finish(settled || 'signal before settling'));
    process.on('SIGTERM', () => {
        finish(settled || 'signal before settling');
        for (const c of clients) c.ws.terminate();
        process.exit(0);
    });
}
