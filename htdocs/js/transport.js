/*
 * Live connection to one board, with the fallback chain
 *   WebSocket ("ws") -> Server-Sent Events ("sse") -> long polling ("longpoll") -> short polling ("poll").
 *
 * Forcing. The page URL parameter ?transport=ws|sse|longpoll|poll pins the connection to that one
 * transport, for users behind awkward proxies and for tests:
 *   - a pinned transport never hands over to another one, neither down nor up the chain: when it
 *     fails it retries itself forever with exponential backoff and jitter, and the badge says
 *     "reconnecting" (or "offline" while the server does not answer at all);
 *   - nothing else is ever opened: with ?transport=sse, longpoll or poll no WebSocket is created,
 *     not even to probe (collaboration features then stay quietly off);
 *   - any other value (or none) means automatic mode.
 *
 * Automatic mode starts at the top of the chain.
 *   - A transport that cannot connect is checked against the plain REST API
 *     (GET /boards/:b/updates?since=N). If the API answers, the transport itself is unusable here
 *     (proxy, policy, missing endpoint) and the next one takes over at once. If the API does not
 *     answer either, the server is down or restarting: the same transport is retried with backoff,
 *     so a restart does not walk the whole chain down.
 *   - A transport that connects but drops 3 times within 2 minutes hands over too.
 *   - While below the top, every 60 s the higher transports are probed, best first; the first one
 *     that goes live replaces the current one.
 *
 * Whatever the transport, it (re)starts from the cursor, the id of the last event applied to the
 * board's state (getCursor()), so switching never loses an event; the state skips ids it already has.
 */

import { api, enc, wsUrl, apiUrl, backoffDelay, sleep } from './api.js';
import { BOARD_EVENT_TYPES, isBoardEventType } from './store.js';

export const CHAIN = ['ws', 'sse', 'longpoll', 'poll'];

export const TRANSPORT_LABELS = {
  ws: 'WebSocket',
  sse: 'SSE',
  longpoll: 'Long polling',
  poll: 'Polling',
};

export const EPHEMERAL_TYPES = ['presence', 'presence_diff', 'user_typing', 'user_stopped_typing', 'cursor'];

const CONNECT_TIMEOUT_MS = 10000;
const CLIMB_INTERVAL_MS = 60000;
const DROP_WINDOW_MS = 120000;
const DROPS_BEFORE_HANDOVER = 3;
const WS_PING_IDLE_MS = 20000;
const WS_PONG_TIMEOUT_MS = 10000;
const LONGPOLL_TIMEOUT_S = 25;
const POLL_INTERVAL_MS = 2000;

/** The transport pinned by ?transport=..., or null. */
export function forcedTransport(search = window.location.search) {
  const v = new URLSearchParams(search).get('transport');
  return CHAIN.includes(v) ? v : null;
}

function parseJson(text) {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' ? v : null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ drivers
//
// A driver opens one connection and reports through its handler h:
//   h.live()            it is connected and delivering
//   h.fail(info)        it is finished: {wasLive, unsupported?, fatal?}; never called after close()
//   h.event(ev)         a board event (with id)
//   h.reset(msg)        the server cannot resume from the cursor: reload the snapshot
//   h.message(msg)      an ephemeral message (presence, typing, ...)
//   h.user(user)        who the server says we are
// close() stops it silently.

class Driver {
  constructor(name, ctx, h) {
    this.name = name;
    this.ctx = ctx;
    this.h = h;
    this.closed = false;
    this.isLive = false;
    this.connectTimer = null;
  }

  armConnectTimeout() {
    this.connectTimer = setTimeout(() => this.fail({}), CONNECT_TIMEOUT_MS);
  }

  markLive() {
    if (this.closed || this.isLive) return;
    this.isLive = true;
    clearTimeout(this.connectTimer);
    this.h.live();
  }

  fail(info = {}) {
    if (this.closed) return;
    const wasLive = this.isLive;
    this.close();
    this.h.fail({ ...info, wasLive });
  }

  close() {
    this.closed = true;
    clearTimeout(this.connectTimer);
  }

  deliver(ev, fallbackType) {
    if (!ev) return;
    if (!ev.type && fallbackType) ev.type = fallbackType;
    if (ev.type === 'reset') this.h.reset(ev);
    else if (isBoardEventType(ev.type) && ev.id != null) this.h.event(ev);
    else if (ev.type === 'connected') { if (ev.user) this.h.user(ev.user); }
    else this.h.message(ev);
  }
}

class WebSocketDriver extends Driver {
  async open() {
    if (typeof WebSocket !== 'function') return this.fail({ unsupported: true });
    this.armConnectTimeout();
    const { boardId } = this.ctx;
    let ticket;
    try {
      const r = await api.wsTicket(boardId, { timeoutMs: CONNECT_TIMEOUT_MS });
      ticket = r.data && r.data.ticket;
    } catch (e) {
      return this.fail({ status: e.status });
    }
    if (this.closed) return;
    if (!ticket) return this.fail({});

    const url = `${wsUrl(`/boards/${enc(boardId)}/ws`)}?ticket=${enc(ticket)}&lastEventId=${enc(this.ctx.getCursor())}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      return this.fail({ unsupported: true });
    }
    this.ws = ws;
    this.lastSent = Date.now();
    this.lastRecv = Date.now();
    ws.onmessage = (m) => this.onMessage(m);
    ws.onerror = () => {};
    ws.onclose = (e) => this.onClose(e);
    this.pinger = setInterval(() => this.keepAlive(), 5000);
  }

  send(msg) {
    if (this.closed || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    try {
      this.ws.send(JSON.stringify(msg));
      this.lastSent = Date.now();
      return true;
    } catch {
      return false;
    }
  }

  keepAlive() {
    if (this.closed || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    if (this.pingSentAt && now - this.pingSentAt > WS_PONG_TIMEOUT_MS && this.lastRecv < this.pingSentAt) {
      // No answer at all to our ping: the connection is dead even if the socket does not know yet.
      try { this.ws.close(4000, 'ping timeout'); } catch { /* closing anyway */ }
      this.fail({});
      return;
    }
    if (now - Math.max(this.lastSent, this.lastRecv) >= WS_PING_IDLE_MS && !this.pingSentAt) {
      this.pingSentAt = now;
      this.send({ type: 'ping' });
    }
  }

  onMessage(m) {
    if (this.closed) return;
    this.lastRecv = Date.now();
    this.pingSentAt = 0;
    const msg = parseJson(typeof m.data === 'string' ? m.data : '');
    if (!msg || typeof msg.type !== 'string') return;
    const { boardId } = this.ctx;
    switch (msg.type) {
      case 'connected':
        if (msg.user) this.h.user(msg.user);
        this.send({ type: 'join', boardId, lastEventId: this.ctx.getCursor() });
        break;
      case 'joined':
        if (!msg.boardId || msg.boardId === boardId) this.markLive();
        break;
      case 'pong':
        break;
      case 'error':
        // A board joined on open answers our join with already_joined: nothing is wrong.
        if (msg.code !== 'already_joined') console.warn('rtboard websocket error:', msg.code, msg.message);
        break;
      case 'reset':
        this.h.reset(msg);
        break;
      default:
        if (msg.boardId && msg.boardId !== boardId) return;
        if (isBoardEventType(msg.type) || msg.type === 'presence') this.markLive();
        this.deliver(msg);
    }
  }

  onClose(e) {
    if (this.closed) return;
    const code = e.code;
    if (code === 4003) return this.fail({ fatal: 'forbidden' });
    if (code === 4004) return this.fail({ fatal: 'not_found' });
    // An upgrade refused by policy (origin) before we were ever live: WebSocket is unusable here.
    if (code === 1008 && !this.isLive) return this.fail({ unsupported: true });
    this.fail({ code });
  }

  close() {
    super.close();
    clearInterval(this.pinger);
    if (this.ws) {
      const ws = this.ws;
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = null;
      if (ws.readyState === WebSocket.OPEN) {
        const { boardId } = this.ctx;
        try { ws.send(JSON.stringify({ type: 'leave', boardId })); } catch { /* closing anyway */ }
      }
      try { ws.close(1000, 'bye'); } catch { /* already closed */ }
      this.ws = null;
    }
  }
}

class SseDriver extends Driver {
  open() {
    if (typeof EventSource !== 'function') return this.fail({ unsupported: true });
    this.armConnectTimeout();
    const { boardId } = this.ctx;
    const url = apiUrl(`/boards/${enc(boardId)}/events?lastEventId=${enc(this.ctx.getCursor())}`);
    const es = new EventSource(url);
    this.es = es;
    es.onopen = () => this.markLive();
    // Unnamed messages: the opening {"type":"connected"} and anything else without an event name.
    es.onmessage = (m) => {
      const msg = parseJson(m.data);
      if (!msg) return;
      if (msg.type === 'connected') {
        if (msg.user) this.h.user(msg.user);
        this.markLive();
        return;
      }
      this.deliver(msg, null);
    };
    for (const type of [...BOARD_EVENT_TYPES, 'reset', ...EPHEMERAL_TYPES]) {
      es.addEventListener(type, (m) => {
        if (this.closed) return;
        const msg = parseJson(m.data);
        if (!msg) return;
        if (msg.id == null && m.lastEventId && type !== 'reset' && isBoardEventType(type)) {
          msg.id = Number(m.lastEventId);
        }
        this.deliver(msg, type);
      });
    }
    // The browser would reconnect by itself from the last id it saw; we reconnect ourselves
    // instead, from the last id actually applied, with our backoff and fallback rules.
    es.onerror = () => this.fail({});
  }

  close() {
    super.close();
    if (this.es) {
      this.es.close();
      this.es = null;
    }
  }
}

class LongPollDriver extends Driver {
  async open() {
    this.ac = new AbortController();
    const { boardId } = this.ctx;
    try {
      // Catch up at once (a long poll may legitimately hang for its whole timeout).
      const first = await api.updates(boardId, this.ctx.getCursor(), {
        signal: this.ac.signal, timeoutMs: CONNECT_TIMEOUT_MS,
      });
      if (this.closed) return;
      this.markLive();
      this.deliverBatch(first.body);
      while (!this.closed) {
        const started = Date.now();
        const r = await api.poll(boardId, this.ctx.getCursor(), LONGPOLL_TIMEOUT_S, {
          signal: this.ac.signal, timeoutMs: (LONGPOLL_TIMEOUT_S + 15) * 1000,
        });
        if (this.closed) return;
        const n = this.deliverBatch(r.body);
        // A server that answers "nothing new" at once must not turn this into a busy loop.
        if (n === 0 && Date.now() - started < 500) await sleep(1000, this.ac.signal);
      }
    } catch (e) {
      this.failOnError(e);
    }
  }

  /** A request failed: a missing board or a refusal ends the connection for good. */
  failOnError(e) {
    if (this.closed) return;
    if (e && e.status === 404) return this.fail({ fatal: 'not_found' });
    if (e && e.status === 403) return this.fail({ fatal: 'forbidden' });
    return this.fail({ status: e && e.status });
  }

  deliverBatch(body) {
    const events = (body && Array.isArray(body.data)) ? body.data : [];
    for (const ev of events) this.deliver(ev, null);
    return events.length;
  }

  close() {
    super.close();
    if (this.ac) this.ac.abort();
  }
}

class PollDriver extends LongPollDriver {
  async open() {
    this.ac = new AbortController();
    const { boardId } = this.ctx;
    try {
      while (!this.closed) {
        const r = await api.updates(boardId, this.ctx.getCursor(), {
          signal: this.ac.signal, timeoutMs: CONNECT_TIMEOUT_MS,
        });
        if (this.closed) return;
        this.markLive();
        this.deliverBatch(r.body);
        await sleep(POLL_INTERVAL_MS, this.ac.signal);
      }
    } catch (e) {
      this.failOnError(e);
    }
  }
}

const DRIVERS = { ws: WebSocketDriver, sse: SseDriver, longpoll: LongPollDriver, poll: PollDriver };

// ------------------------------------------------------------------ manager

/**
 * opts: boardId, getCursor(), forced (transport name or null), and callbacks
 * onEvent(ev), onReset(msg), onMessage(msg), onUser(user), onState(transport, state),
 * onFatal(kind) with kind 'forbidden' | 'not_found'.
 * state: 'connecting' | 'live' | 'reconnecting' | 'offline' | 'stopped'.
 */
export class LiveConnection {
  constructor(opts) {
    this.o = opts;
    this.forced = opts.forced || null;
    this.chain = this.forced ? [this.forced] : CHAIN.slice();
    this.index = 0;
    this.active = null;
    this.probe = null;
    this.state = 'connecting';
    this.failures = 0;
    this.drops = [];
    this.retryTimer = null;
    this.climbTimer = null;
    this.stopped = true;
    this.serverDown = false;
    this.onOnline = () => this.retryNow();
    this.onVisible = () => { if (document.visibilityState === 'visible') this.retryNow(); };
    this.onOffline = () => { if (this.state !== 'live' && !this.stopped) this.setState('offline'); };
    this.everLive = false;
  }

  get transport() {
    return this.chain[this.index];
  }

  get isWebSocketLive() {
    return this.state === 'live' && this.active instanceof WebSocketDriver;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.openActive();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.retryTimer);
    clearTimeout(this.climbTimer);
    if (this.active) this.active.close();
    if (this.probe) this.probe.close();
    this.active = null;
    this.probe = null;
    this.setState('stopped');
  }

  /** Reconnect now instead of waiting for the backoff (badge button, browser back online). */
  retryNow() {
    if (this.stopped || this.active) return;
    clearTimeout(this.retryTimer);
    this.openActive();
  }

  /** Send a collaboration message; only a live WebSocket carries them. */
  send(msg) {
    if (this.state !== 'live' || !(this.active instanceof WebSocketDriver)) return false;
    return this.active.send(msg);
  }

  setState(state) {
    if (this.state === state && this.reportedTransport === this.transport) return;
    this.state = state;
    this.reportedTransport = this.transport;
    if (this.o.onState) this.o.onState(this.transport, state);
  }

  makeDriver(name, role) {
    const Ctor = DRIVERS[name];
    const ctx = { boardId: this.o.boardId, getCursor: this.o.getCursor };
    const driver = new Ctor(name, ctx, null);
    const mine = () => !this.stopped && (driver === this.active || driver === this.probe);
    driver.h = {
      live: () => { if (mine()) (role === 'probe' ? this.onProbeLive(driver) : this.onLive(driver)); },
      fail: (info) => { if (mine()) (driver === this.probe ? this.onProbeFail(driver) : this.onFail(driver, info)); },
      event: (ev) => { if (mine()) this.o.onEvent(ev); },
      reset: (msg) => { if (mine()) this.o.onReset(msg); },
      message: (msg) => { if (mine() && driver === this.active) this.o.onMessage(msg); },
      user: (u) => { if (mine() && this.o.onUser) this.o.onUser(u); },
    };
    return driver;
  }

  openActive() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const name = this.transport;
    if (this.state !== 'offline') {
      this.setState(this.failures === 0 && !this.everLive ? 'connecting' : 'reconnecting');
    }
    const driver = this.makeDriver(name, 'active');
    this.active = driver;
    driver.open();
  }

  onLive() {
    this.everLive = true;
    this.failures = 0;
    this.serverDown = false;
    this.setState('live');
    this.scheduleClimb();
  }

  async onFail(driver, info) {
    this.active = null;
    clearTimeout(this.climbTimer);
    if (info.fatal) {
      this.stop();
      if (this.o.onFatal) this.o.onFatal(info.fatal);
      return;
    }
    const now = Date.now();
    if (info.wasLive) {
      this.drops = this.drops.filter((t) => now - t < DROP_WINDOW_MS);
      this.drops.push(now);
    }
    if (this.everLive && this.state !== 'offline') this.setState('reconnecting');

    const canHandOver = !this.forced && this.index < this.chain.length - 1;
    const suspect = info.unsupported || !info.wasLive || this.drops.length >= DROPS_BEFORE_HANDOVER;
    const reachable = await this.serverReachable();
    if (this.stopped || this.active) return;
    this.serverDown = !reachable;

    if (canHandOver && (info.unsupported || (suspect && reachable))) {
      this.index += 1;
      this.failures = 0;
      this.drops = [];
      this.openActive();
      return;
    }
    this.failures += 1;
    const offline = !navigator.onLine || (!reachable && this.failures >= 2);
    this.setState(offline ? 'offline' : 'reconnecting');
    // A live connection that just dropped is retried quickly the first time.
    const delay = info.wasLive && this.failures === 1 ? backoffDelay(0, 300) : backoffDelay(this.failures);
    this.retryTimer = setTimeout(() => this.openActive(), delay);
  }

  /** Does the REST API answer? Any events it returns are delivered (deduplicated by the state). */
  async serverReachable() {
    try {
      const r = await api.updates(this.o.boardId, this.o.getCursor(), { timeoutMs: 5000 });
      if (!this.stopped) {
        const events = (r.body && Array.isArray(r.body.data)) ? r.body.data : [];
        for (const ev of events) {
          if (ev.type === 'reset') this.o.onReset(ev);
          else if (isBoardEventType(ev.type)) this.o.onEvent(ev);
        }
      }
      return true;
    } catch (e) {
      return e.status !== 0 && e.status < 500;
    }
  }

  // ---- climbing back up the chain ----

  scheduleClimb() {
    clearTimeout(this.climbTimer);
    if (this.forced || this.index === 0 || this.stopped) return;
    this.climbTimer = setTimeout(() => this.climb(0), CLIMB_INTERVAL_MS);
  }

  climb(target) {
    if (this.stopped || this.forced || this.state !== 'live' || target >= this.index) {
      this.scheduleClimb();
      return;
    }
    this.probeTarget = target;
    this.probe = this.makeDriver(this.chain[target], 'probe');
    this.probe.open();
  }

  onProbeLive(driver) {
    const old = this.active;
    this.probe = null;
    this.active = driver;
    this.index = this.probeTarget;
    this.failures = 0;
    this.drops = [];
    if (old) old.close();
    this.setState('live');
    this.scheduleClimb();
  }

  onProbeFail() {
    this.probe = null;
    const next = this.probeTarget + 1;
    if (next < this.index) this.climb(next);
    else this.scheduleClimb();
  }
}

