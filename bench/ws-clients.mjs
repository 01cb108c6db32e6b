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
// For another server (bench/nchan-fanout SUB=ws), env WS_PATH replaces the
// path and a socket counts as ready when its handshake completes (there is no
// `joined`); event ids are the "id" of each message's JSON either way.
//
//   node ws-clients.mjs storm PORT BOARD FIRST COUNT TOTAL SPREAD_MS OUT
// Connects users user<FIRST>..user<FIRST+COUNT-1> (password: the name), one
// socket each, spread evenly over SPREAD_MS, and keeps each one's view of the
// board's presence: a `presence` message replaces it (count, version, first
// page), a `presence_diff` whose base is the view's version is applied (any
// other newer one is a gap: the socket asks for `presence` again). The
// protocol without diffs (`user_joined`/`user_left`, the whole list in
// `presence`) is understood too, to measure older builds. Prints JOINED_ALL
// when every socket has its first `presence`, COUNTED_ALL when every view
// counts TOTAL, SETTLED once every socket got the board event titled "storm
// barrier" (or after 120 s); records the arrival of every board event; on
// SIGUSR1 writes OUT (per-socket presence messages and bytes, when each view
// reached TOTAL, the views' first pages and counts, event arrivals). SIGTERM
// closes them all and exits.
import WebSocket from 'ws';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { cpuMs, nowMs, record, streamFields, writeReport } from './tally.mjs';

const mode = process.argv[2];
const basic = (cred) => 'Basic ' + Buffer.from(cred).toString('base64');

const wsPath = process.env.WS_PATH;

function connect(port, board, cred) {
    return new WebSocket(`ws://127.0.0.1:${port}${wsPath || `/boards/${board}/ws`}`, {
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

    function ready1(s, base) {
        s.base = base;
        s.state = 'open';
        s.opened = true;
        ok++; pending--;
        pump();
    }

    function open() {
        const s = { state: 'connecting', opened: false, ...streamFields() };
        socks.push(s);
        started++; pending++;
        s.ws = connect(port, board, cred);
        if (wsPath) s.ws.on('open', () => ready1(s, 0));
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
                ready1(s, m.lastEventId);
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
            console.log(`READY ok=${ok} failed=${failed} at=${Date.now()} cpu=${Math.round(cpuAtReady)} reasons=${JSON.stringify(failReasons)}`);
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
    const clients = [];
    const failReasons = {};
    const arrivals = {}; // board event id -> [arrival times]
    let joined = 0, failed = 0, done = false, settleMs = 0;
    let presences = 0, counted = 0, barriers = 0, lastBarrier = 0, joinedAll = false, countedAll = false;
    let lastJoinAbs = 0;
    const counts = { presence: 0, presence_diff: 0, user_joined: 0, user_left: 0, gaps: 0, other: 0 };
    const t0 = nowMs();

    // a view: the first page (ids in order) and the count, at a version
    function setCount(c, n, t) {
        const was = c.count === total;
        c.count = n;
        if (n === total && !was) { c.tCount = t; counted++; }
        else if (n !== total && was) { c.tCount = 0; counted--; }
    }

    function openOne(i) {
        const user = `user${first + i}`;
        const c = { user, page: [], set: null, count: -1, version: null, joined: false, failed: false,
            gotPresence: false, barrier: false, msgs: 0, bytes: 0, tCount: 0 };
        clients.push(c);
        c.ws = connect(port, board, `${user}:${user}`);
        c.ws.on('message', (data) => {
            const t = nowMs();
            const m = JSON.parse(data);
            if (m.id !== undefined) {
                (arrivals[m.id] ||= []).push(t);
                if (m.data && m.data.task && m.data.task.title === 'storm barrier' && !c.barrier) {
                    c.barrier = true; barriers++; lastBarrier = t;
                }
            } else if (m.type === 'presence') {
                c.msgs++; c.bytes += data.length; counts.presence++;
                if (!c.gotPresence) { presences++; c.gotPresence = true; }
                c.page = m.users.map((u) => u.userId);
                c.version = m.version ?? null;
                if (m.version === undefined) c.set = new Set(c.page); // the protocol without diffs
                setCount(c, m.count ?? c.page.length, t);
            } else if (m.type === 'presence_diff') {
                c.msgs++; c.bytes += data.length; counts.presence_diff++;
                if (c.version === null || m.version <= c.version) return;
                if (m.base !== c.version) {
                    counts.gaps++;
                    c.version = null;
                    c.ws.send(JSON.stringify({ type: 'presence', boardId: board }));
                    return;
                }
                const gone = new Set(m.left);
                c.page = c.page.filter((u) => !gone.has(u)).concat(m.joined.map((u) => u.userId));
                c.version = m.version;
                setCount(c, m.count, t);
            } else if (m.type === 'user_joined' || m.type === 'user_left') {
                c.msgs++; c.bytes += data.length; counts[m.type]++;
                if (!c.set) c.set = new Set(c.page);
                if (m.type === 'user_joined') c.set.add(m.userId); else c.set.delete(m.userId);
                c.page = [...c.set];
                setCount(c, c.set.size, t);
            } else if (m.type === 'joined') {
                if (!c.joined) { c.joined = true; joined++; lastJoinAbs = Math.max(lastJoinAbs, t); }
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
        const pages = {}, finalCounts = {};
        for (const c of clients) {
            const p = c.set && c.version === null ? [...c.page].sort() : c.page; // old protocol: a set
            const h = crypto.createHash('sha1').update(p.join(',')).digest('hex').slice(0, 12);
            pages[h] = (pages[h] || 0) + 1;
            finalCounts[c.count] = (finalCounts[c.count] || 0) + 1;
        }
        fs.writeFileSync(out, JSON.stringify({
            clients: count, joined, failed, failReasons, counts, settledBy: why, settleMs, barriers,
            pages, finalCounts, full: clients.filter((c) => !c.failed && c.count === total).length,
            msgs: clients.map((c) => c.msgs), bytes: clients.map((c) => c.bytes),
            tCountMaxAbs: Math.max(0, ...clients.map((c) => c.tCount)), lastJoinAbs, t0Abs: t0,
            cpuMs: cpuMs(), arrivals,
        }));
    }

    let settled = null;
    const timer = setInterval(() => {
        const now = nowMs();
        console.log(`PROGRESS joined=${joined} failed=${failed} presence=${presences} counted=${counted} ` +
            `barrier=${barriers} presence_msgs=${counts.presence + counts.presence_diff + counts.user_joined + counts.user_left}`);
        if (!joinedAll && clients.length === count && presences + failed >= count) {
            joinedAll = true;
            console.log(`JOINED_ALL after ${Math.round(now - t0)} ms`);
        }
        if (joinedAll && !countedAll && counted + failed >= count) {
            countedAll = true;
            console.log(`COUNTED_ALL after ${Math.round(now - t0)} ms`);
        }
        if (settled) return;
        if (countedAll && barriers + failed >= count) settled = 'barrier';
        else if (now - t0 > 120000) settled = 'deadline';
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
