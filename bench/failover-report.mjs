// Failover report for bench/cluster: node failover-report.mjs LAST KILL_AT OUT.json...
// KILL_AT: the moment of the kill, CLOCK_MONOTONIC ms.
// A stream is affected when it was cut after the kill; it has resumed when
// its next `connected` event arrived (the replay of what it missed follows
// at once on the same stream). Events lost or repeated: against 1..LAST.
import fs from 'node:fs';

const last = +process.argv[2];
const killAt = +process.argv[3];
const resume = [], cutAfter = [];
let streams = 0, affected = 0, lost = 0, dup = 0, disorder = 0, notResumed = 0;
for (const f of process.argv.slice(4)) {
    const r = JSON.parse(fs.readFileSync(f));
    for (const s of r.streams) {
        streams++;
        const seen = new Set();
        let prev = 0;
        for (const id of s.ids) {
            if (seen.has(id)) dup++;
            if (id < prev) disorder++;
            seen.add(id);
            prev = id;
        }
        for (let i = 1; i <= last; i++) if (!seen.has(i)) lost++;
        const cut = s.cuts.find((t) => t >= killAt);
        if (cut === undefined) continue;
        affected++;
        cutAfter.push(cut - killAt);
        const back = s.opens.find((t) => t >= cut);
        if (back === undefined) notResumed++;
        else resume.push(back - killAt);
    }
}
resume.sort((a, b) => a - b);
cutAfter.sort((a, b) => a - b);
const pick = (a, p) => a.length ? a[Math.min(a.length - 1, Math.floor(p * a.length))].toFixed(0) : '-';
const q = (p) => pick(resume, p);
console.log(`streams ${streams}; cut by the kill ${affected}; resumed ${resume.length}, not resumed ${notResumed}`);
console.log(`time from kill -9 to resumed: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${resume.length ? resume[resume.length - 1].toFixed(0) : '-'} ms`);
console.log(`of which the client saw its stream end: p50 ${pick(cutAfter, 0.5)} ms, max ${pick(cutAfter, 1)} ms after the kill`);
console.log(`events 1..${last} on every stream: lost ${lost}, repeated ${dup}, out of order ${disorder}`);
