// What the client scripts of bench/fanout and bench/ws share: the clock, the
// per-stream record of board event ids, and the report they write.
import fs from 'node:fs';

// CLOCK_MONOTONIC in ms, the same clock in every process.
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
export const cpuMs = () => { const u = process.cpuUsage(); return Math.round((u.user + u.system) / 1000); };

// The fields record() keeps on a stream.
export const streamFields = () => ({ base: 0, last: 0, seen: new Set(), dup: 0, outOfOrder: 0,
    unexpected: 0, done: false });

// Records board event `id` arriving at time t on stream s (base = the id the
// stream started from); arrivals[k] collects the times of event base+k+1.
// True when this id completes the stream's `events` events.
export function record(s, id, t, events, arrivals) {
    if (s.seen.has(id)) { s.dup++; return false; }
    s.seen.add(id);
    if (id <= s.last) s.outOfOrder++;
    s.last = id;
    const k = id - s.base - 1;
    if (k >= 0 && k < events) arrivals[k].push(t);
    else s.unexpected++;
    if (s.seen.size === events && !s.done) {
        s.done = true;
        return true;
    }
    return false;
}

// Writes the report of the streams that opened to `out` (JSON).
export function writeReport(out, streams, events, arrivals, extra) {
    let missing = 0, dup = 0, outOfOrder = 0, unexpected = 0, perfect = 0;
    for (const s of streams) {
        if (!s.opened) continue;
        const got = [...s.seen].filter((id) => id > s.base && id <= s.base + events).length;
        missing += events - got;
        dup += s.dup;
        outOfOrder += s.outOfOrder;
        unexpected += s.unexpected;
        if (got === events && s.dup === 0 && s.outOfOrder === 0 && s.unexpected === 0) perfect++;
    }
    const bases = [...new Set(streams.filter((s) => s.opened).map((s) => s.base))];
    fs.writeFileSync(out, JSON.stringify({
        ...extra, bases, missing, dup, outOfOrder, unexpected, perfect,
        arrivals: arrivals.map((a) => a.map((t) => Math.round(t * 1000) / 1000)),
    }));
}
