// REST client for the rtboard API.
//
// Every success body is {"data": ...}; every error body is
// {"error": {status, code, message, field?, current?}}. Failures are thrown as ApiError.
// The authenticated user id is read from the X-RTBoard-User header of every answer.

const meta = typeof document !== 'undefined'
  ? document.querySelector('meta[name="rtboard-api-base"]')
  : null;
const API_BASE = ((meta && meta.content) || '').replace(/\/+$/, '');

export function apiUrl(path) {
  return API_BASE + path;
}

export function wsUrl(path) {
  const abs = new URL(apiUrl(path), window.location.href);
  abs.protocol = abs.protocol === 'https:' ? 'wss:' : 'ws:';
  return abs.toString();
}

export const enc = encodeURIComponent;

const DEFAULT_MESSAGES = {
  0: 'Cannot reach the server. Check your connection.',
  400: 'The server could not read the request.',
  401: 'You are not signed in.',
  403: 'You do not have access to this.',
  404: 'Not found.',
  405: 'That action is not allowed here.',
  409: 'That conflicts with the current state.',
  412: 'Someone changed this in the meantime.',
  413: 'That is too large.',
  415: 'The server did not accept the request format.',
  422: 'Some fields are not valid.',
  429: 'Too many requests; slow down a little.',
  500: 'The server hit an internal error.',
  502: 'The server is unavailable.',
  503: 'The server is unavailable.',
  504: 'The server took too long to answer.',
};

export class ApiError extends Error {
  constructor(status, body, { aborted = false, timedOut = false } = {}) {
    const e = (body && typeof body === 'object' && body.error) || {};
    super(e.message || DEFAULT_MESSAGES[status] || `Request failed (HTTP ${status}).`);
    this.name = 'ApiError';
    this.status = status;
    this.code = e.code || (status === 0 ? (timedOut ? 'timeout' : 'network_error') : `http_${status}`);
    this.field = e.field || null;
    this.current = e.current || null;
    this.aborted = aborted;
    this.timedOut = timedOut;
  }

  get isNetwork() {
    return this.status === 0;
  }
}

// ---- identity from the X-RTBoard-User header ----

const userListeners = new Set();
let lastUser = null;

export function onUserHeader(fn) {
  userListeners.add(fn);
  if (lastUser) fn(lastUser);
  return () => userListeners.delete(fn);
}

function noteUser(res) {
  const u = res.headers.get('X-RTBoard-User');
  if (u && u !== lastUser) {
    lastUser = u;
    for (const fn of userListeners) fn(u);
  }
}

// ---- 401 notification (session ended, credentials rejected) ----

const authListeners = new Set();
export function onUnauthorized(fn) {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

// ---- helpers ----

// RFC 4122 v4 id from crypto.getRandomValues (randomUUID needs a secure context).
export function randomId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(new DOMException('Aborted', 'AbortError'));
    const t = setTimeout(resolve, ms);
    if (signal) {
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new DOMException('Aborted', 'AbortError'));
      }, { once: true });
    }
  });
}

// Exponential backoff with jitter: a random delay in [cap/2, cap], cap = base * 2^attempt.
export function backoffDelay(attempt, base = 500, max = 10000) {
  const cap = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(cap / 2 + Math.random() * (cap / 2));
}

const RETRYABLE_STATUS = new Set([502, 503, 504]);

/**
 * One API call.
 * opts: body (JSON-encoded), ifMatch (task version), idempotencyKey (POST; generated when
 * missing and reused by every retry), signal, timeoutMs, retries (GET and POST retry transient
 * failures twice by default; PATCH and DELETE never retry on their own).
 * Resolves to {status, data, body, headers}; rejects with ApiError.
 */
export async function request(method, path, opts = {}) {
  const { body, ifMatch, signal, timeoutMs } = opts;
  const headers = { Accept: 'application/json' };
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (ifMatch !== undefined && ifMatch !== null) headers['If-Match'] = `"${ifMatch}"`;
  if (method === 'POST') headers['Idempotency-Key'] = opts.idempotencyKey || randomId();

  const safeToRetry = method === 'GET' || method === 'POST';
  const maxAttempts = 1 + (opts.retries ?? (safeToRetry ? 2 : 0));

  for (let attempt = 1; ; attempt++) {
    const ctl = new AbortController();
    let timedOut = false;
    const onAbort = () => ctl.abort();
    if (signal) {
      if (signal.aborted) throw new ApiError(0, null, { aborted: true });
      signal.addEventListener('abort', onAbort, { once: true });
    }
    const timer = timeoutMs ? setTimeout(() => { timedOut = true; ctl.abort(); }, timeoutMs) : null;

    let res;
    let text = '';
    try {
      res = await fetch(apiUrl(path), {
        method,
        headers,
        body: payload,
        credentials: 'same-origin',
        cache: 'no-store',
        signal: ctl.signal,
      });
      noteUser(res);
      text = res.status === 204 ? '' : await res.text();
    } catch (err) {
      if (signal && signal.aborted) throw new ApiError(0, null, { aborted: true });
      if (attempt < maxAttempts && !timedOut) {
        await sleep(backoffDelay(attempt - 1, 300, 2000), signal).catch(() => {});
        continue;
      }
      throw new ApiError(0, null, { timedOut });
    } finally {
      if (timer) clearTimeout(timer);
      if (signal) signal.removeEventListener('abort', onAbort);
    }

    if (RETRYABLE_STATUS.has(res.status) && attempt < maxAttempts) {
      await sleep(backoffDelay(attempt - 1, 300, 2000), signal).catch(() => {});
      continue;
    }

    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
    }
    if (!res.ok) {
      if (res.status === 401) for (const fn of authListeners) fn();
      throw new ApiError(res.status, json);
    }
    return { status: res.status, data: json ? json.data : null, body: json, headers: res.headers };
  }
}

// ---- endpoints ----

const B = (b) => `/boards/${enc(b)}`;

export const api = {
  listBoards: (after) => request('GET', after ? `/boards?after=${enc(after)}` : '/boards'),
  createBoard: (board, key) => request('POST', '/boards', { body: board, idempotencyKey: key }),
  getBoard: (b, opts = {}) => request('GET', B(b), opts),
  renameBoard: (b, name) => request('PATCH', B(b), { body: { name } }),

  createList: (b, name, key) => request('POST', `${B(b)}/lists`, { body: { name }, idempotencyKey: key }),
  renameList: (b, l, name) => request('PATCH', `${B(b)}/lists/${enc(l)}`, { body: { name } }),
  deleteList: (b, l, cascade) =>
    request('DELETE', `${B(b)}/lists/${enc(l)}${cascade ? '?cascade=1' : ''}`),

  getTask: (b, t) => request('GET', `${B(b)}/tasks/${enc(t)}`, { retries: 1 }),
  createTask: (b, task, key) => request('POST', `${B(b)}/tasks`, { body: task, idempotencyKey: key }),
  updateTask: (b, t, fields, version) =>
    request('PATCH', `${B(b)}/tasks/${enc(t)}`, { body: fields, ifMatch: version }),
  moveTask: (b, t, listId, position, version) =>
    request('PATCH', `${B(b)}/tasks/${enc(t)}/move`, { body: { listId, position }, ifMatch: version }),
  deleteTask: (b, t, version) => request('DELETE', `${B(b)}/tasks/${enc(t)}`, { ifMatch: version }),

  wsTicket: (b, opts = {}) => request('POST', `${B(b)}/ws-ticket`, { retries: 0, ...opts }),
  updates: (b, since, opts = {}) =>
    request('GET', `${B(b)}/updates?since=${enc(since)}`, { retries: 0, ...opts }),
  poll: (b, since, timeout, opts = {}) =>
    request('GET', `${B(b)}/poll?since=${enc(since)}&timeout=${enc(timeout)}`, { retries: 0, ...opts }),
};
