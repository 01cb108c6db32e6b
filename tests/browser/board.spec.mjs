#!/usr/bin/env node
// Browser checks of the rtboard client against a running server.
//
//   RTB_URL          server base URL (default http://127.0.0.1:8080)
//   RTB_BOARD        board to use (default demo; created if missing)
//   RTB_TRANSPORTS   forced transports to check (default ws,sse,longpoll,poll)
//   RTB_RESTART_CMD  if set: a shell command that restarts the server; it is run mid-test and
//                    the outage must show on the badge, and a change made during it must appear
//                    exactly once afterwards (see restartScenario below)
//   RTB_SCREENSHOTS  where screenshots go (default tests/output/screenshots)
//   RTB_CHROMIUM     browser binary (default /usr/bin/chromium)
//
// Plain Node (no test runner): prints one line per check and a closing
// "N passed, N failed, N skipped" line; the exit code is non-zero when a check failed.
// Every wait has a deadline; nothing sleeps for a fixed time.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const config = {
  baseUrl: (process.env.RTB_URL || 'http://127.0.0.1:8080').replace(/\/+$/, ''),
  board: process.env.RTB_BOARD || 'demo',
  transports: (process.env.RTB_TRANSPORTS || 'ws,sse,longpoll,poll').split(',').map((s) => s.trim()).filter(Boolean),
  restartCmd: process.env.RTB_RESTART_CMD || '',
  screenshots: process.env.RTB_SCREENSHOTS || path.resolve(HERE, '../output/screenshots'),
  chromium: process.env.RTB_CHROMIUM || '/usr/bin/chromium',
};

export const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const T = {
  live: 20000, // a page reaching "live"
  sync: 15000, // a change showing up on the other page (short polling needs up to ~2 s + backoff)
  ui: 10000, // a local UI reaction
};

// ------------------------------------------------------------------ reporting

const results = [];
let counter = 0;

/** Run one named check; a failed dependency (needs = false) skips it. Returns true on success. */
export async function check(name, fn, { needs = true } = {}) {
  counter += 1;
  const n = counter;
  if (!needs) {
    results.push({ name, status: 'skip' });
    console.log(`skip ${n} - ${name} (an earlier check it depends on failed)`);
    return false;
  }
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, status: 'pass' });
    console.log(`ok ${n} - ${name} (${Date.now() - t0} ms)`);
    return true;
  } catch (e) {
    results.push({ name, status: 'fail', error: e });
    const msg = String((e && e.message) || e).split('\n').slice(0, 6).join('\n    ');
    console.log(`not ok ${n} - ${name} (${Date.now() - t0} ms)\n    ${msg}`);
    return false;
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Poll fn until it returns a truthy value; throws with `what` after timeout ms. */
export async function waitUntil(fn, { timeout = T.sync, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last instanceof Error ? ` (${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

let shotNo = 0;
export async function screenshot(page, name) {
  shotNo += 1;
  const file = path.join(config.screenshots, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  try {
    await page.screenshot({ path: file, fullPage: false });
  } catch (e) {
    console.log(`  (screenshot ${name} failed: ${e.message})`);
  }
  return file;
}

// ------------------------------------------------------------------ page helpers

/**
 * A page of `who` on the board; records page errors and opened WebSockets.
 * before(page), when given, runs before the page loads (routes, init scripts).
 */
export async function openBoard(context, { board = config.board, transport = null, who = 'user', before = null } = {}) {
  const page = await context.newPage();
  page.rtb = { who, errors: [], consoleErrors: [], websockets: [] };
  page.on('pageerror', (e) => page.rtb.errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') page.rtb.consoleErrors.push(m.text()); });
  page.on('websocket', (ws) => page.rtb.websockets.push(ws.url()));
  if (before) await before(page);
  const qs = new URLSearchParams({ board });
  if (transport) qs.set('transport', transport);
  await page.goto(`${config.baseUrl}/?${qs}`, { waitUntil: 'domcontentloaded' });
  return page;
}

export async function badge(page) {
  return page.evaluate(() => {
    const b = document.getElementById('conn-badge');
    return b ? { transport: b.dataset.transport, state: b.dataset.state, text: b.textContent.replace(/\s+/g, ' ').trim() } : null;
  });
}

export async function waitBadge(page, { state = 'live', transport = null, timeout = T.live } = {}) {
  return waitUntil(async () => {
    const b = await badge(page);
    return b && b.state === state && (!transport || b.transport === transport) ? b : null;
  }, { timeout, what: `badge ${transport || 'any transport'} ${state} (last: ${JSON.stringify(await badge(page).catch(() => null))})` });
}

const card = (page, taskId) => page.locator(`[data-testid="task-card"][data-task-id="${taskId}"]`);
const column = (page, listId) => page.locator(`[data-testid="list"][data-list-id="${listId}"]`);
const cardsTitled = (page, title) => page.locator('[data-testid="task-card"]')
  .filter({ has: page.locator('[data-testid="task-title"]', { hasText: new RegExp(`^${escapeRe(title)}$`) }) });

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export async function listIds(page) {
  return page.locator('[data-testid="list"]').evaluateAll((els) => els.map((e) => e.dataset.listId));
}

/** Where a task is on a page: {listId, title} or null. */
export async function taskState(page, taskId) {
  return page.evaluate((id) => {
    const el = document.querySelector(`[data-testid="task-card"][data-task-id="${CSS.escape(id)}"]`);
    if (!el) return null;
    return { listId: el.closest('[data-testid="list"]').dataset.listId, title: el.querySelector('[data-testid="task-title"]').textContent };
  }, taskId);
}

/** Type a new task into a column's form; returns its server id once the card has one. */
export async function createTaskViaUi(page, listId, title) {
  const col = column(page, listId);
  await col.locator('[data-testid="new-task-input"]').fill(title);
  await col.locator('[data-testid="new-task-submit"]').click();
  return waitUntil(async () => {
    const ids = await cardsTitled(page, title).evaluateAll((els) => els.map((e) => e.dataset.taskId));
    return ids.length === 1 && !ids[0].startsWith('tmp-') ? ids[0] : null;
  }, { timeout: T.sync, what: `the new card "${title}" to get its server id` });
}

export async function openEditor(page, taskId) {
  await card(page, taskId).click();
  const dialog = page.locator('[data-testid="task-dialog"]');
  await dialog.waitFor({ state: 'visible', timeout: T.ui });
  return dialog;
}

// Records, in the page, every distinct state a card goes through (exists? title? list?).
async function recordTaskHistory(page, taskId) {
  await page.evaluate((id) => {
    const read = () => {
      const el = document.querySelector(`[data-testid="task-card"][data-task-id="${CSS.escape(id)}"]`);
      if (!el) return 'gone';
      return `${el.closest('[data-testid="list"]').dataset.listId}|${el.querySelector('[data-testid="task-title"]').textContent}`;
    };
    window.__rtbHistory = [read()];
    new MutationObserver(() => {
      const s = read();
      if (s !== window.__rtbHistory[window.__rtbHistory.length - 1]) window.__rtbHistory.push(s);
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  }, taskId);
}

function runCommand(cmd) {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (e) => resolve({ code: -1, error: e }));
  });
}

async function api(context, method, p, body, headers = {}) {
  const res = await context.request.fetch(`${config.baseUrl}${p}`, {
    method, data: body === undefined ? undefined : body,
    headers: { Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
    failOnStatusCode: false,
  });
  let json = null;
  try { json = await res.json(); } catch { json = null; }
  return { status: res.status(), json, headers: res.headers() };
}

export async function ensureBoard(context, board) {
  const r = await api(context, 'GET', `/boards/${encodeURIComponent(board)}`);
  if (r.status === 200) return r.json;
  if (r.status !== 404) throw new Error(`GET /boards/${board} answered ${r.status}`);
  const c = await api(context, 'POST', '/boards', { id: board, name: `${board[0].toUpperCase()}${board.slice(1)} board` },
    { 'Idempotency-Key': randomUUID() });
  if (c.status !== 201 && c.status !== 409) throw new Error(`POST /boards answered ${c.status}`);
  return (await api(context, 'GET', `/boards/${encodeURIComponent(board)}`)).json;
}

// ------------------------------------------------------------------ automatic fallback

const CHAIN = ['ws', 'sse', 'longpoll', 'poll'];

// The live endpoints of a board, matched on the path only so that nothing else is caught
// (not /boards/:b/ws-ticket, not /boards/:b/updates, not the page's own files).
const LIVE_PATHS = {
  ws: /^\/boards\/[^/]+\/ws$/,
  sse: /^\/boards\/[^/]+\/events$/,
  longpoll: /^\/boards\/[^/]+\/poll$/,
};

/** How long the client may take to settle on a lower transport when the higher ones are refused at once. */
const FALLBACK_BUDGET_MS = 10000;

/**
 * Opens a page of bob's in automatic mode (no ?transport=) with every transport above `mode` made
 * unavailable to that page: its WebSockets are accepted by the route and closed at once, its
 * SSE and long-poll requests are aborted (a network error). Checks that the badge settles on
 * `mode`, live, having walked the chain down in order; that alice's new task and her edit reach
 * bob; and that the page stays on `mode` with every refused transport actually tried.
 */
export async function fallbackScenario({ alicePage, bobContext, listId, mode, tag, pages, needs = true }) {
  const blocked = CHAIN.slice(0, CHAIN.indexOf(mode));
  const refused = { ws: 0, sse: 0, longpoll: 0 };
  const label = `[auto, ${blocked.join('+')} refused]`;
  let bobPage = null;
  let fellBackMs = null;

  const up = await check(`${label} bob's page falls back and goes live on ${mode}`, async () => {
    const t0 = Date.now();
    bobPage = await openBoard(bobContext, {
      who: `bob (auto, ${blocked.join('+')} refused)`,
      before: async (page) => {
        // Every state the badge goes through, from the first paint on.
        await page.addInitScript(() => {
          window.__rtbBadge = [];
          document.addEventListener('DOMContentLoaded', () => {
            const b = document.getElementById('conn-badge');
            if (!b) return;
            const note = () => {
              const s = `${b.dataset.transport}:${b.dataset.state}`;
              if (window.__rtbBadge[window.__rtbBadge.length - 1] !== s) window.__rtbBadge.push(s);
            };
            note();
            new MutationObserver(note).observe(b, { attributes: true, attributeFilter: ['data-transport', 'data-state'] });
          });
        });
        if (blocked.includes('ws')) {
          await page.routeWebSocket((u) => LIVE_PATHS.ws.test(u.pathname), (ws) => {
            refused.ws += 1;
            ws.close();
          });
        }
        for (const t of ['sse', 'longpoll']) {
          if (!blocked.includes(t)) continue;
          await page.route((u) => LIVE_PATHS[t].test(u.pathname), (route) => {
            refused[t] += 1;
            return route.abort();
          });
        }
      },
    });
    pages.push(bobPage);
    await waitBadge(bobPage, { state: 'live', transport: mode, timeout: FALLBACK_BUDGET_MS });
    fellBackMs = Date.now() - t0;
    const history = await bobPage.evaluate(() => window.__rtbBadge || []);
    console.log(`#   badge: ${history.join(' > ')}`);
    const walked = history.map((s) => s.split(':')[0]).filter((t, i, a) => t && t !== a[i - 1]);
    assert(walked.join() === CHAIN.slice(0, CHAIN.indexOf(mode) + 1).join(),
      `the badge went through ${JSON.stringify(history)}`);
  }, { needs });
  if (fellBackMs !== null) console.log(`#   live on ${mode} ${fellBackMs} ms after opening the page`);

  const t = `Auto ${mode} ${tag}`;
  let id = null;
  const seen = await check(`${label} bob sees alice's new task`, async () => {
    id = await createTaskViaUi(alicePage, listId, t);
    await card(bobPage, id).waitFor({ state: 'visible', timeout: T.sync });
  }, { needs: up });
  await check(`${label} bob sees alice's edit`, async () => {
    const dialog = await openEditor(alicePage, id);
    await dialog.locator('[data-testid="edit-title"]').fill(`${t} edited`);
    await dialog.locator('[data-testid="edit-save"]').click();
    await dialog.waitFor({ state: 'hidden', timeout: T.ui });
    await card(bobPage, id).locator('[data-testid="task-title"]', { hasText: `${t} edited` }).waitFor({ timeout: T.sync });
  }, { needs: seen });
  if (bobPage) await screenshot(bobPage, `bob-auto-fallback-${mode}`);

  await check(`${label} the page stays on ${mode}, and every refused transport was tried`, async () => {
    const b = await badge(bobPage);
    assert(b.transport === mode && b.state === 'live', `badge is ${JSON.stringify(b)}`);
    for (const t2 of blocked) assert(refused[t2] >= 1, `${t2} was never tried (refused: ${JSON.stringify(refused)})`);
    const history = await bobPage.evaluate(() => window.__rtbBadge || []);
    const settled = history.indexOf(`${mode}:live`);
    const after = history.slice(settled).filter((s) => !s.startsWith(`${mode}:`));
    assert(after.length === 0, `the badge left ${mode} after settling: ${JSON.stringify(history)}`);
  }, { needs: up });

  if (id) {
    const dialog = await openEditor(alicePage, id).catch(() => null);
    if (dialog) {
      await dialog.locator('[data-testid="task-delete"]').click();
      await card(alicePage, id).waitFor({ state: 'detached', timeout: T.ui }).catch(() => {});
    }
  }
  if (bobPage) await bobPage.close();
}

// ------------------------------------------------------------------ server restart

/**
 * Restart the server mid-session (config.restartCmd) while alice and bob have the board open.
 * Checks: bob's badge leaves "live" during the outage; both pages come back live; a task that
 * alice creates during the outage (retried with one Idempotency-Key until the server answers)
 * shows up exactly once on both pages, also after a later change has been delivered.
 * alice, bob: {page, context}. Returns nothing; reports through check().
 */
export async function restartScenario({ alice, bob, board = config.board, restartCmd = config.restartCmd, tag = Date.now().toString(36) }) {
  if (!restartCmd) return;
  const snap = await api(alice.context, 'GET', `/boards/${encodeURIComponent(board)}`);
  const firstList = snap.json && snap.json.data && snap.json.data.lists && snap.json.data.lists
    .slice().sort((a, b) => a.position - b.position)[0];
  const ready = await check('restart: both pages are live before the restart', async () => {
    assert(firstList, 'the board has no list');
    await waitBadge(alice.page, { state: 'live' });
    await waitBadge(bob.page, { state: 'live' });
  });

  await bob.page.evaluate(() => {
    const b = document.getElementById('conn-badge');
    window.__rtbStates = [b.dataset.state];
    new MutationObserver(() => window.__rtbStates.push(b.dataset.state))
      .observe(b, { attributes: true, attributeFilter: ['data-state'] });
  });

  const title = `Outage change ${tag}`;
  const key = randomUUID();
  const restart = runCommand(restartCmd);
  let created = null;

  await check('restart: bob\'s badge shows the outage', async () => {
    await waitUntil(() => bob.page.evaluate(() => window.__rtbStates.some((s) => s === 'reconnecting' || s === 'offline')),
      { timeout: 30000, what: 'the badge to show reconnecting/offline' });
  }, { needs: ready });

  await check('restart: a task created during the outage is accepted (retried with one Idempotency-Key)', async () => {
    await waitUntil(async () => {
      try {
        const r = await api(alice.context, 'POST', `/boards/${encodeURIComponent(board)}/tasks`,
          { listId: firstList.id, title }, { 'Idempotency-Key': key });
        if (r.status === 201 || r.status === 200) {
          created = r.json.data;
          return true;
        }
        return false;
      } catch {
        return false; // connection refused while the server is down
      }
    }, { timeout: 60000, interval: 500, what: 'the server to accept the task' });
  }, { needs: ready });

  await check('restart: the restart command succeeds', async () => {
    const r = await restart;
    assert(r.code === 0, `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}`);
  });

  const back = await check('restart: both pages are live again', async () => {
    await waitBadge(bob.page, { state: 'live', timeout: 60000 });
    await waitBadge(alice.page, { state: 'live', timeout: 60000 });
  }, { needs: ready });
  await screenshot(bob.page, 'restart-bob-back');

  await check('restart: the outage change appears exactly once on both pages', async () => {
    for (const p of [bob.page, alice.page]) {
      await card(p, created.id).waitFor({ state: 'visible', timeout: T.sync });
    }
    // A later change proves the stream is past the outage change; a duplicate would show by then.
    const sentinel = `After outage ${tag}`;
    const s = await api(alice.context, 'POST', `/boards/${encodeURIComponent(board)}/tasks`,
      { listId: firstList.id, title: sentinel }, { 'Idempotency-Key': randomUUID() });
    assert(s.status === 201 || s.status === 200, `sentinel create answered ${s.status}`);
    for (const p of [bob.page, alice.page]) {
      await card(p, s.json.data.id).waitFor({ state: 'visible', timeout: T.sync });
      const n = await cardsTitled(p, title).count();
      assert(n === 1, `${p.rtb ? p.rtb.who : 'page'} shows the outage change ${n} times`);
    }
    await api(alice.context, 'DELETE', `/boards/${encodeURIComponent(board)}/tasks/${encodeURIComponent(s.json.data.id)}`);
  }, { needs: back && !!created });
  if (created) await api(alice.context, 'DELETE', `/boards/${encodeURIComponent(board)}/tasks/${encodeURIComponent(created.id)}`);
}

// ------------------------------------------------------------------ phone screen

export const PHONE = { width: 390, height: 844 };

/** Where the page and its header reach horizontally, and how the columns scroll. */
async function phoneLayout(page) {
  return page.evaluate(() => {
    const header = document.querySelector('header.topbar');
    const hb = header.getBoundingClientRect();
    // Every visible piece of the header, so that nothing sticks out of a header that fits.
    const parts = [...header.querySelectorAll('*')].map((el) => ({ el, r: el.getBoundingClientRect() }))
      .filter(({ el, r }) => r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden'
        && !el.closest('#user-popover'));
    const cols = document.querySelector('[data-testid="columns"]');
    return {
      pageWidth: document.documentElement.scrollWidth,
      header: { left: hb.left, right: hb.right },
      headerParts: { left: Math.min(hb.left, ...parts.map((p) => p.r.left)), right: Math.max(hb.right, ...parts.map((p) => p.r.right)) },
      columns: { scrollWidth: cols.scrollWidth, clientWidth: cols.clientWidth, overflowX: getComputedStyle(cols).overflowX },
      lists: document.querySelectorAll('[data-testid="list"]').length,
    };
  });
}

/**
 * Alice on a 390x844 phone screen: the page never scrolls sideways and the header fits the
 * screen; the columns scroll sideways inside the board; tasks can be added to the first list
 * and to the third (reached by scrolling the columns) and show there.
 */
export async function phoneScenario({ browser, lists, tag, pages, needs = true }) {
  const label = `[phone ${PHONE.width}x${PHONE.height}]`;
  const context = await browser.newContext({
    httpCredentials: { username: 'alice', password: 'alice' }, viewport: PHONE, isMobile: true, hasTouch: true,
  });
  const created = [];
  try {
    let page = null;
    const up = await check(`${label} alice's board goes live`, async () => {
      page = await openBoard(context, { who: 'alice (phone)' });
      pages.push(page);
      await waitBadge(page, { state: 'live' });
      await waitUntil(async () => (await listIds(page)).length >= 3, { timeout: T.ui, what: 'three lists' });
    }, { needs });
    if (up) await screenshot(page, 'phone-board');

    await check(`${label} the page does not scroll sideways and the header fits the screen`, async () => {
      const l = await phoneLayout(page);
      assert(l.pageWidth <= PHONE.width, `document.documentElement.scrollWidth is ${l.pageWidth}`);
      assert(l.header.left >= 0 && l.header.right <= PHONE.width, `the header spans ${l.header.left}..${l.header.right}`);
      assert(l.headerParts.left >= 0 && l.headerParts.right <= PHONE.width,
        `something in the header spans ${l.headerParts.left}..${l.headerParts.right}`);
    }, { needs: up });

    await check(`${label} the columns scroll sideways inside the board`, async () => {
      const l = await phoneLayout(page);
      assert(l.lists >= 3, `${l.lists} lists`);
      assert(l.columns.scrollWidth > l.columns.clientWidth,
        `columns: scrollWidth ${l.columns.scrollWidth}, clientWidth ${l.columns.clientWidth}`);
      assert(['auto', 'scroll'].includes(l.columns.overflowX), `columns overflow-x is ${l.columns.overflowX}`);
    }, { needs: up });

    await check(`${label} alice adds a task to the first list and to the third; both show on screen`, async () => {
      for (const listId of [lists[0], lists[2]]) {
        const id = await createTaskViaUi(page, listId, `Phone ${listId} ${tag}`);
        created.push(id);
        const c = card(page, id);
        await c.scrollIntoViewIfNeeded({ timeout: T.ui });
        const box = await c.boundingBox();
        assert(box && box.x >= 0 && box.x + box.width <= PHONE.width, `the card is at ${JSON.stringify(box)}`);
      }
      const scrolled = await page.locator('[data-testid="columns"]').evaluate((el) => el.scrollLeft);
      assert(scrolled > 0, 'the columns did not scroll to reach the third list');
      const l = await phoneLayout(page);
      assert(l.pageWidth <= PHONE.width, `after scrolling the columns, the page is ${l.pageWidth} px wide`);
    }, { needs: up && lists.length >= 3 });
    if (up) await screenshot(page, 'phone-third-list');
  } finally {
    for (const id of created) {
      await api(context, 'DELETE', `/boards/${encodeURIComponent(config.board)}/tasks/${encodeURIComponent(id)}`);
    }
    await context.close();
  }
}

// ------------------------------------------------------------------ the run

export async function run() {
  fs.mkdirSync(config.screenshots, { recursive: true });
  console.log(`rtboard browser checks against ${config.baseUrl}, board "${config.board}"`);
  const browser = await chromium.launch({ executablePath: config.chromium, args: LAUNCH_ARGS });
  const viewport = { width: 1360, height: 860 };
  const ctxA = await browser.newContext({ httpCredentials: { username: 'alice', password: 'alice' }, viewport });
  const ctxB = await browser.newContext({ httpCredentials: { username: 'bob', password: 'bob' }, viewport });
  const pages = [];
  const tag = Date.now().toString(36);

  try {
    const boardOk = await check('the board exists (created when missing)', async () => {
      const snap = await ensureBoard(ctxA, config.board);
      assert(snap && snap.data && Array.isArray(snap.data.lists), 'snapshot without lists');
    });

    if (!boardOk) return summary(); // nothing else can work without the server

    const pageA = await openBoard(ctxA, { who: 'alice' });
    const pageB = await openBoard(ctxB, { who: 'bob' });
    pages.push(pageA, pageB);

    const live = await check('alice and bob both load the board and go live', async () => {
      await waitBadge(pageA, { state: 'live' });
      await waitBadge(pageB, { state: 'live' });
    }, { needs: boardOk });

    await check('the default connection is a WebSocket', async () => {
      const a = await badge(pageA);
      const b = await badge(pageB);
      assert(a.transport === 'ws' && b.transport === 'ws', `alice: ${a.transport}, bob: ${b.transport}`);
    }, { needs: live });

    await check('the header names the signed-in user', async () => {
      await waitUntil(async () => (await pageA.locator('#current-user').getAttribute('data-user-id')) === 'alice',
        { timeout: T.ui, what: 'alice in the header' });
      await waitUntil(async () => (await pageB.locator('#current-user').getAttribute('data-user-id')) === 'bob',
        { timeout: T.ui, what: 'bob in the header' });
    }, { needs: live });

    await check('each sees the other in presence', async () => {
      await pageA.locator('#presence [data-user-id="bob"]').waitFor({ state: 'visible', timeout: T.sync });
      await pageB.locator('#presence [data-user-id="alice"]').waitFor({ state: 'visible', timeout: T.sync });
    }, { needs: live });

    await check('a crowded board shows the first avatars, "+N" and the count, and recovers from a missed diff', async () => {
      // a third page whose WebSocket passes through a route that adds 120 people to the
      // presence the server sends (count and first page), so the header must page
      const FAKE = Array.from({ length: 120 }, (_, i) => ({ userId: `crowd${i}`, name: `Crowd ${i}` }));
      const asked = [];
      let toPage = null;
      const pageC = await openBoard(ctxA, {
        who: 'alice (crowd)',
        before: (page) => page.routeWebSocket((u) => LIVE_PATHS.ws.test(u.pathname), (ws) => {
          const server = ws.connectToServer();
          toPage = ws;
          ws.onMessage((m) => {
            try { if (JSON.parse(m).type === 'presence') asked.push(m); } catch { /* not JSON */ }
            server.send(m);
          });
          server.onMessage((m) => {
            let msg = null;
            try { msg = JSON.parse(m); } catch { /* not JSON */ }
            if (msg && msg.type === 'presence') {
              msg.users = [...FAKE, ...msg.users];
              msg.count += FAKE.length;
              msg.complete = false;
              return ws.send(JSON.stringify(msg));
            }
            if (msg && msg.type === 'presence_diff') {
              msg.count += FAKE.length;
              return ws.send(JSON.stringify(msg));
            }
            ws.send(m);
          });
        }),
      });
      pages.push(pageC);
      await waitBadge(pageC, { state: 'live', transport: 'ws' });
      // alice and bob are on the board: 122 people, 5 avatars (alice first), "+117"
      const read = () => pageC.evaluate(() => {
        const el = document.getElementById('presence');
        const more = el.querySelector('[data-testid="presence-more"]');
        return { count: el.dataset.count, avatars: el.querySelectorAll('[data-testid="presence-user"]').length,
          first: el.querySelector('[data-testid="presence-user"]')?.dataset.userId, more: more ? more.textContent : null };
      });
      await waitUntil(async () => { const r = await read(); return r.count === '122' && r.more === '+117' ? r : null; },
        { timeout: T.sync, what: `122 people as 5 avatars and +117 (last: ${JSON.stringify(await read())})` });
      const r = await read();
      assert(r.avatars === 5 && r.first === 'alice', JSON.stringify(r));
      // a diff that does not follow the version the page holds: it asks for the state again
      const before = asked.length;
      toPage.send(JSON.stringify({ type: 'presence_diff', boardId: config.board, base: -5, version: 2 ** 50,
        count: 1, joined: [], left: [] }));
      await waitUntil(async () => asked.length > before, { timeout: T.ui, what: 'a presence request after the gap' });
      assert(JSON.parse(asked[asked.length - 1]).boardId === config.board, asked[asked.length - 1]);
      await waitUntil(async () => (await read()).count === '122', { timeout: T.sync, what: 'the count again after the new state' });
      await screenshot(pageC, 'presence-crowd');
      await pageC.close();
      pages.splice(pages.indexOf(pageC), 1);
    }, { needs: live });

    let lists = [];
    const listsOk = await check('the board has at least three lists (added through the UI if needed)', async () => {
      lists = await listIds(pageA);
      for (let i = lists.length; i < 3; i++) {
        await pageA.locator('[data-testid="new-list-input"]').fill(`List ${i + 1}`);
        await pageA.locator('[data-testid="new-list-submit"]').click();
        await waitUntil(async () => (await listIds(pageA)).filter((id) => !id.startsWith('tmp-')).length > i,
          { timeout: T.sync, what: 'the new list' });
      }
      lists = (await listIds(pageA)).slice(0, 3);
      await waitUntil(async () => (await listIds(pageB)).slice(0, 3).join() === lists.join(),
        { timeout: T.sync, what: 'bob to show the same lists' });
    }, { needs: live });
    await screenshot(pageA, 'alice-board');

    // ---- alice creates, edits, moves and deletes a task; bob sees each step in order ----

    const title = `Task ${tag}`;
    const edited = `${title} edited`;
    let taskId = null;
    const created = await check('alice creates a task and bob sees it exactly once', async () => {
      taskId = await createTaskViaUi(pageA, lists[0], title);
      await card(pageB, taskId).waitFor({ state: 'visible', timeout: T.sync });
      const st = await taskState(pageB, taskId);
      assert(st.listId === lists[0] && st.title === title, `bob shows ${JSON.stringify(st)}`);
      assert(await cardsTitled(pageA, title).count() === 1, 'alice shows the task more than once');
      assert(await cardsTitled(pageB, title).count() === 1, 'bob shows the task more than once');
    }, { needs: listsOk });
    if (created) await recordTaskHistory(pageB, taskId);
    await screenshot(pageB, 'bob-sees-new-task');

    const typingSeen = await check('bob sees "alice is typing" on the card while she edits it', async () => {
      const dialog = await openEditor(pageA, taskId);
      const titleInput = dialog.locator('[data-testid="edit-title"]');
      await titleInput.press('End');
      const typing = card(pageB, taskId).locator('[data-testid="task-typing"]');
      await Promise.all([
        titleInput.pressSequentially(' edited', { delay: 120 }),
        typing.waitFor({ state: 'visible', timeout: T.sync }),
      ]);
      const text = await typing.textContent();
      assert(/alice/i.test(text) && /typing/i.test(text), `typing indicator says "${text}"`);
    }, { needs: created });
    await screenshot(pageB, 'bob-sees-alice-typing');

    await check('alice saves title, description and assignee; bob sees them and the typing note clears', async () => {
      const dialog = pageA.locator('[data-testid="task-dialog"]');
      if (!(await dialog.isVisible())) await openEditor(pageA, taskId);
      await dialog.locator('[data-testid="edit-title"]').fill(edited);
      await dialog.locator('[data-testid="edit-description"]').fill(`Steps for ${tag}:\n1. do it\n2. check it`);
      await dialog.locator('[data-testid="edit-assignee"]').fill('bob');
      await dialog.locator('[data-testid="edit-save"]').click();
      await dialog.waitFor({ state: 'hidden', timeout: T.ui });
      const c = card(pageB, taskId);
      await c.locator('[data-testid="task-title"]', { hasText: edited }).waitFor({ timeout: T.sync });
      await c.locator('[data-testid="task-assignee"][data-user-id="bob"]').waitFor({ timeout: T.sync });
      await c.locator('[data-testid="task-has-description"]').waitFor({ timeout: T.sync });
      await c.locator('[data-testid="task-typing"]').waitFor({ state: 'hidden', timeout: 8000 });
    }, { needs: created });

    await check('alice moves the task with the dialog\'s list field; bob sees it move', async () => {
      const dialog = await openEditor(pageA, taskId);
      await dialog.locator('[data-testid="edit-list"]').selectOption(lists[1]);
      await dialog.locator('[data-testid="edit-save"]').click();
      await dialog.waitFor({ state: 'hidden', timeout: T.ui });
      await column(pageB, lists[1]).locator(`[data-task-id="${taskId}"]`).waitFor({ timeout: T.sync });
    }, { needs: created });

    await check('alice moves the task with Alt+ArrowRight; the card keeps focus and bob sees it move', async () => {
      await card(pageA, taskId).focus();
      await pageA.keyboard.press('Alt+ArrowRight');
      await column(pageA, lists[2]).locator(`[data-task-id="${taskId}"]`).waitFor({ timeout: T.ui });
      await waitUntil(() => pageA.evaluate((id) => document.activeElement && document.activeElement.dataset.taskId === id, taskId),
        { timeout: T.ui, what: 'focus to stay on the moved card' });
      await column(pageB, lists[2]).locator(`[data-task-id="${taskId}"]`).waitFor({ timeout: T.sync });
    }, { needs: created });

    await check('alice drags the task back to the first list; bob sees it move', async () => {
      await card(pageA, taskId).dragTo(column(pageA, lists[0]).locator('[data-testid="list-cards"]'));
      await column(pageA, lists[0]).locator(`[data-task-id="${taskId}"]`).waitFor({ timeout: T.ui });
      await column(pageB, lists[0]).locator(`[data-task-id="${taskId}"]`).waitFor({ timeout: T.sync });
    }, { needs: created });
    await screenshot(pageB, 'bob-after-moves');

    const deleted = await check('alice deletes the task; it disappears for both', async () => {
      const dialog = await openEditor(pageA, taskId);
      await dialog.locator('[data-testid="task-delete"]').click();
      await card(pageA, taskId).waitFor({ state: 'detached', timeout: T.ui });
      await card(pageB, taskId).waitFor({ state: 'detached', timeout: T.sync });
    }, { needs: created });

    await check('bob saw every step, in order', async () => {
      const history = await pageB.evaluate(() => window.__rtbHistory || []);
      const expected = [`${lists[0]}|${title}`, `${lists[0]}|${edited}`, `${lists[1]}|${edited}`,
        `${lists[2]}|${edited}`, `${lists[0]}|${edited}`, 'gone'];
      // Walk the recorded states: each must be the current expected state or a later one.
      let k = 0;
      for (const st of history) {
        let j = k;
        while (j < expected.length && expected[j] !== st) j += 1;
        assert(j < expected.length, `unexpected or out-of-order state "${st}"; bob went through ${JSON.stringify(history)}`);
        k = j;
      }
      const reached = expected.every((st, j) => history.includes(st) || j === 0);
      assert(reached && k === expected.length - 1,
        `expected the states ${JSON.stringify(expected)} in order, bob went through ${JSON.stringify(history)}`);
    }, { needs: created && deleted });

    // ---- lists ----

    const listName = `Review ${tag}`;
    let newList = null;
    const listAdded = await check('alice adds a list; bob sees it', async () => {
      const before = new Set(await listIds(pageA));
      await pageA.locator('[data-testid="new-list-input"]').fill(listName);
      await pageA.locator('[data-testid="new-list-submit"]').click();
      newList = await waitUntil(async () => (await listIds(pageA)).find((id) => !before.has(id) && !id.startsWith('tmp-')),
        { timeout: T.sync, what: 'the new list on alice\'s page' });
      await column(pageB, newList).locator('[data-testid="list-name"]', { hasText: listName }).waitFor({ timeout: T.sync });
    }, { needs: live });

    await check('alice renames the list; bob sees the new name', async () => {
      await column(pageA, newList).locator('[data-testid="list-rename"]').click();
      const input = column(pageA, newList).locator('[data-testid="list-rename-input"]');
      await input.fill(`${listName} (renamed)`);
      await input.press('Enter');
      await column(pageB, newList).locator('[data-testid="list-name"]', { hasText: `${listName} (renamed)` }).waitFor({ timeout: T.sync });
    }, { needs: listAdded });

    await check('alice deletes the list; it disappears for bob', async () => {
      pageA.once('dialog', (d) => d.accept());
      await column(pageA, newList).locator('[data-testid="list-delete"]').click();
      await column(pageB, newList).waitFor({ state: 'detached', timeout: T.sync });
    }, { needs: listAdded });

    // ---- a phone screen ----

    await phoneScenario({ browser, lists, tag, pages, needs: listsOk });

    // ---- every forced transport still delivers alice's changes to bob ----

    for (const transport of config.transports) {
      const pageT = await openBoard(ctxB, { transport, who: `bob (${transport})` });
      pages.push(pageT);
      const up = await check(`[${transport}] bob's page goes live and the badge names ${transport}`, async () => {
        await waitBadge(pageT, { state: 'live', transport });
      }, { needs: listsOk });
      const t = `Via ${transport} ${tag}`;
      let id = null;
      const seen = await check(`[${transport}] bob sees alice's new task`, async () => {
        id = await createTaskViaUi(pageA, lists[1], t);
        await card(pageT, id).waitFor({ state: 'visible', timeout: T.sync });
      }, { needs: up });
      await check(`[${transport}] bob sees alice's edit`, async () => {
        const dialog = await openEditor(pageA, id);
        await dialog.locator('[data-testid="edit-title"]').fill(`${t} edited`);
        await dialog.locator('[data-testid="edit-save"]').click();
        await card(pageT, id).locator('[data-testid="task-title"]', { hasText: `${t} edited` }).waitFor({ timeout: T.sync });
      }, { needs: seen });
      await screenshot(pageT, `bob-forced-${transport}`);
      await check(`[${transport}] bob sees alice's delete`, async () => {
        const dialog = await openEditor(pageA, id);
        await dialog.locator('[data-testid="task-delete"]').click();
        await card(pageT, id).waitFor({ state: 'detached', timeout: T.sync });
      }, { needs: seen });
      await check(`[${transport}] the badge still names ${transport}; ${transport === 'ws' ? 'a WebSocket was used' : 'no WebSocket was opened'}`, async () => {
        const b = await badge(pageT);
        assert(b.transport === transport && b.state === 'live', `badge is ${JSON.stringify(b)}`);
        const n = pageT.rtb.websockets.length;
        if (transport === 'ws') assert(n >= 1, 'no WebSocket was opened');
        else assert(n === 0, `${n} WebSocket(s) opened: ${pageT.rtb.websockets.join(', ')}`);
      }, { needs: up });
      await pageT.close();
    }

    // ---- automatic fallback: with the higher transports refused, bob still gets alice's changes ----

    for (const mode of ['sse', 'longpoll', 'poll']) {
      await fallbackScenario({ alicePage: pageA, bobContext: ctxB, listId: lists[1], mode, tag, pages, needs: listsOk });
    }

    // ---- a board bob may not read: a 403, "No access" and a way back, not a sign-in ----

    await check('bob opening alice\'s private board is told he has no access, with a way back', async () => {
      const p = await openBoard(ctxB, { board: 'private', who: 'bob-private' });
      pages.push(p);
      await p.getByRole('heading', { name: 'No access' }).waitFor({ timeout: T.ui });
      const back = p.getByRole('link', { name: /all boards/i });
      assert(await back.count() >= 1, 'no link back to the boards');
      assert(await p.getByText('Sign in to RT Board').count() === 0, 'the page asks bob to sign in again');
      await screenshot(p, 'bob-no-access');
      await back.first().click();
      await p.getByRole('heading', { name: 'Boards' }).waitFor({ timeout: T.ui });
      await p.close();
    });

    // ---- server restart (only when a restart command is given) ----

    if (config.restartCmd) {
      await restartScenario({ alice: { page: pageA, context: ctxA }, bob: { page: pageB, context: ctxB }, tag });
    } else {
      console.log('# RTB_RESTART_CMD not set: restart checks not run');
    }

    await check('no uncaught errors in any page', async () => {
      const errs = pages.flatMap((p) => p.rtb.errors.map((e) => `${p.rtb.who}: ${e}`));
      assert(errs.length === 0, errs.join('\n'));
    });
    for (const p of pages) {
      if (p.rtb.consoleErrors.length) {
        console.log(`# console errors on ${p.rtb.who}'s page (network failures show up here too):`);
        for (const m of p.rtb.consoleErrors.slice(0, 5)) console.log(`#   ${m}`);
      }
    }
    await screenshot(pageA, 'alice-final');
  } finally {
    await browser.close();
  }
  return summary();
}

/** Print the closing line; true when every check passed. */
export function summary() {
  const passed = results.filter((r) => r.status === 'pass').length;
  const failed = results.filter((r) => r.status === 'fail').length;
  const skipped = results.filter((r) => r.status === 'skip').length;
  console.log(`# screenshots in ${config.screenshots}`);
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  return failed === 0 && skipped === 0 && passed > 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
  run().then((ok) => {
    process.exitCode = ok ? 0 : 1;
  }, (e) => {
    console.log(`not ok - the run stopped: ${(e && e.message) || e}`);
    results.push({ name: 'run', status: 'fail', error: e });
    summary();
    process.exitCode = 1;
  });
}
