// An independent SSE client for the integration tests: npm `eventsource` (4.x)
// on one URL with Basic auth, reporting everything as JSON lines on stdout:
//   {"kind": "fetch", "n", "lastEventId", "authorization"}  each (re)connection request
//   {"kind": "open"} | {"kind": "error", "message", "code"}
//   {"kind": "message", "data", "lastEventId"}              unnamed messages (connected)
//   {"kind": "event", "event", "id", "data"}                board events and resets
//   {"kind": "reconnect", "data"}                           the server's goodbye
//   {"kind": "closed"}                                      stdin closed: done
// Every line has "t" (ms since the epoch). Environment: RTB_URL, RTB_USER,
// RTB_PASS, RTB_DEADLINE_MS (exit 2 when reached).
import {EventSource} from 'eventsource';

const url = process.env.RTB_URL;
const user = process.env.RTB_USER || 'alice';
const pass = process.env.RTB_PASS || user;
const auth = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

const out = (o) => process.stdout.write(JSON.stringify({t: Date.now(), ...o}) + '\n');

const TYPES = ['board_updated', 'board_deleted', 'list_created', 'list_updated', 'list_deleted',
  'task_created', 'task_updated', 'task_moved', 'task_deleted', 'reset'];

let fetches = 0;
const es = new EventSource(url, {
  fetch: (input, init) => {
    const headers = {...(init.headers || {}), Authorization: auth};
    out({kind: 'fetch', n: ++fetches, lastEventId: headers['Last-Event-ID'] ?? null,
      authorization: true});
    return fetch(input, {...init, headers});
  },
});

es.addEventListener('open', () => out({kind: 'open'}));
es.addEventListener('error', (e) => out({kind: 'error', message: e.message ?? null,
  code: e.code ?? null, readyState: es.readyState}));
es.addEventListener('message', (e) => out({kind: 'message', data: e.data,
  lastEventId: e.lastEventId}));
es.addEventListener('reconnect', (e) => out({kind: 'reconnect', data: e.data}));
for (const type of TYPES) {
  es.addEventListener(type, (e) => out({kind: 'event', event: type, id: e.lastEventId,
    data: e.data}));
}

const deadline = setTimeout(() => {
  out({kind: 'deadline'});
  es.close();
  process.exit(2);
}, Number(process.env.RTB_DEADLINE_MS || 60000));

process.stdin.on('end', () => {
  es.close();
  clearTimeout(deadline);
  out({kind: 'closed'});
  process.exit(0);
});
process.stdin.resume();
