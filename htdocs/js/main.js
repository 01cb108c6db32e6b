// Entry point: routing (home = board list, ?board=ID or #/boards/ID = a board), the header
// (user, presence, connection badge) and the board page, which ties the state, the live
// connection, collaboration and the view together.

import { api, onUserHeader, onUnauthorized, randomId, backoffDelay } from './api.js';
import { BoardStore } from './store.js';
import { LiveConnection, forcedTransport, TRANSPORT_LABELS } from './transport.js';
import { Collab } from './collab.js';
import { Actions } from './actions.js';
import { TaskEditor } from './editor.js';
import { BoardView } from './board.js';
import { h, toast, announce, avatar } from './ui.js';

const BOARD_ID_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const app = {
  me: null,
  meName: null,
  page: null,
};

const $ = (id) => document.getElementById(id);
const main = $('main');

// ------------------------------------------------------------------ routing

function currentBoardId() {
  const q = new URLSearchParams(window.location.search).get('board');
  if (q) return q;
  const m = window.location.hash.match(/^#\/boards\/([^/?#]+)/);
  return m ? decodeURIComponent(m[1]) : null;
}

function boardHref(id) {
  const p = new URLSearchParams(window.location.search);
  p.set('board', id);
  return `${window.location.pathname}?${p}`;
}

function homeHref() {
  const p = new URLSearchParams(window.location.search);
  p.delete('board');
  const qs = p.toString();
  return `${window.location.pathname}${qs ? `?${qs}` : ''}`;
}

function navigate(href) {
  window.history.pushState(null, '', href);
  route();
}

function route() {
  if (app.page) app.page.destroy();
  const boardId = currentBoardId();
  $('home-link').setAttribute('href', homeHref());
  app.page = boardId ? new BoardPage(boardId) : new HomePage();
  app.page.key = boardId || '';
  app.page.start();
}

// History navigation fires popstate and, for a hash change, hashchange too: route once.
function routeIfChanged() {
  if (app.page && app.page.key === (currentBoardId() || '')) return;
  route();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[data-nav]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', routeIfChanged);
window.addEventListener('hashchange', routeIfChanged);

// ------------------------------------------------------------------ header: user

function setMe(user) {
  const userId = typeof user === 'object' && user ? (user.userId ?? user.id) : user;
  const name = typeof user === 'object' && user ? user.name : null;
  if (!userId) return;
  const changed = app.me !== String(userId) || (name && name !== app.meName);
  app.me = String(userId);
  app.meName = name || app.meName || app.me;
  if (!changed) return;
  const btnName = $('current-user');
  btnName.textContent = app.meName;
  btnName.dataset.userId = app.me;
  $('user-avatar').replaceChildren(avatar(app.me, app.meName, { size: 'sm', label: `Signed in as ${app.meName}` }));
  $('user-popover-name').textContent = app.meName === app.me ? app.me : `${app.meName} (${app.me})`;
  if (app.page && app.page.onMe) app.page.onMe();
}

onUserHeader((u) => setMe(u));

let unauthorizedShown = false;
onUnauthorized(() => {
  if (unauthorizedShown || !app.me) return;
  unauthorizedShown = true;
  toast('The server no longer accepts your sign-in. Reload the page to sign in again.', {
    kind: 'error', timeout: 30000, action: { label: 'Reload', run: () => window.location.reload() },
  });
});

function setupUserMenu() {
  const btn = $('user-button');
  const pop = $('user-popover');
  const setOpen = (open) => {
    pop.hidden = !open;
    btn.setAttribute('aria-expanded', String(open));
  };
  btn.addEventListener('click', () => setOpen(pop.hidden));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !pop.hidden) {
      setOpen(false);
      btn.focus();
    }
  });
  document.addEventListener('click', (e) => {
    if (!pop.hidden && !pop.contains(e.target) && !btn.contains(e.target)) setOpen(false);
  });
}

// ------------------------------------------------------------------ header: badge and presence

const STATE_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  stopped: 'Disconnected',
};

function setBadge(transport, state) {
  const badge = $('conn-badge');
  badge.hidden = false;
  badge.dataset.transport = transport;
  badge.dataset.state = state;
  const label = TRANSPORT_LABELS[transport] || transport;
  badge.querySelector('.conn-transport').textContent = label;
  badge.querySelector('.conn-state').textContent = STATE_TEXT[state] || state;
  const pinned = forcedTransport() ? ' (chosen by the page address)' : '';
  const tip = state === 'live'
    ? `Live updates over ${label}${pinned}.`
    : `${STATE_TEXT[state] || state} (${label}${pinned}). Activate to try again now.`;
  badge.title = tip;
  badge.setAttribute('aria-label', `Connection: ${label}, ${STATE_TEXT[state] || state}`);
}

function hideBadge() {
  const badge = $('conn-badge');
  badge.hidden = true;
  badge.dataset.transport = '';
  badge.dataset.state = 'idle';
}

function renderPresence(users, enabled) {
  const el = $('presence');
  el.hidden = users.length === 0;
  el.dataset.enabled = String(enabled);
  el.title = enabled ? '' : 'Who else is here is shown on WebSocket connections only.';
  const want = users.map((u) => u.userId).join('\n');
  if (el.dataset.users === want && el.dataset.names === users.map((u) => u.name).join('\n')) return;
  el.dataset.users = want;
  el.dataset.names = users.map((u) => u.name).join('\n');
  el.replaceChildren(...users.map((u) => {
    const you = u.userId === app.me;
    const li = h('li', { 'data-user-id': u.userId, 'data-testid': 'presence-user', class: you ? 'is-me' : '' },
      avatar(u.userId, u.name, { size: 'md', label: you ? `${u.name} (you)` : u.name }));
    return li;
  }));
}

// ------------------------------------------------------------------ pages

function messagePage(title, text, actions = []) {
  main.replaceChildren(h('section', { class: 'message-page' },
    h('h1', {}, title),
    ...[].concat(text).map((t) => h('p', {}, t)),
    h('div', { class: 'message-actions' }, ...actions)));
  const heading = main.querySelector('h1');
  heading.tabIndex = -1;
  heading.focus();
}

function signInPage() {
  hideBadge();
  renderPresence([], false);
  document.title = 'Sign in · RT Board';
  messagePage('Sign in to RT Board', [
    'Your browser asks for a user name and password when you sign in.',
    'Demo accounts: alice, bob and carol; each password is the user name.',
  ], [h('button', { type: 'button', class: 'btn btn-primary', onclick: () => window.location.reload() }, 'Sign in')]);
}

class HomePage {
  start() {
    hideBadge();
    renderPresence([], false);
    document.title = 'Boards · RT Board';
    this.alive = true;
    this.listEl = h('ul', { class: 'board-grid', 'data-testid': 'board-list', 'aria-busy': 'true' },
      h('li', { class: 'board-tile skeleton' }), h('li', { class: 'board-tile skeleton' }));
    const nameInput = h('input', {
      id: 'new-board-name', class: 'input', type: 'text', required: true, maxlength: 100,
      autocomplete: 'off', 'data-testid': 'new-board-name', placeholder: 'e.g. Website launch',
    });
    const idInput = h('input', {
      id: 'new-board-id', class: 'input', type: 'text', maxlength: 64, autocomplete: 'off',
      'data-testid': 'new-board-id', pattern: '[a-z0-9][a-z0-9_\\-]{0,63}', 'aria-describedby': 'new-board-id-help',
    });
    const err = h('p', { class: 'field-error', id: 'new-board-error', role: 'alert', hidden: true });
    nameInput.addEventListener('input', () => {
      idInput.placeholder = slugify(nameInput.value) || 'website-launch';
    });
    const form = h('form', { class: 'new-board card-panel', 'data-testid': 'new-board-form', novalidate: true },
      h('h2', {}, 'Create a board'),
      h('div', { class: 'field' }, h('label', { for: 'new-board-name' }, 'Name'), nameInput),
      h('div', { class: 'field' }, h('label', { for: 'new-board-id' }, 'Address (optional)'), idInput,
        h('p', { class: 'hint', id: 'new-board-id-help' },
          'Lower-case letters, digits, “-” and “_”. Left empty, it is made from the name.')),
      err,
      h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'new-board-submit' }, 'Create board'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.create(nameInput, idInput, err, form);
    });
    main.replaceChildren(h('div', { class: 'home' },
      h('section', { class: 'home-boards', 'aria-labelledby': 'boards-heading' },
        h('h1', { id: 'boards-heading' }, 'Boards'),
        this.listEl),
      form));
    this.load();
  }

  destroy() {
    this.alive = false;
  }

  async load() {
    try {
      const r = await api.listBoards();
      if (!this.alive) return;
      const boards = Array.isArray(r.data) ? r.data : [];
      this.listEl.removeAttribute('aria-busy');
      if (!boards.length) {
        this.listEl.replaceChildren(h('li', { class: 'empty' }, 'No boards yet. Create the first one.'));
        return;
      }
      boards.sort((a, b) => String(a.name || a.id).localeCompare(String(b.name || b.id)));
      this.listEl.replaceChildren(...boards.map((b) => h('li', {},
        h('a', {
          class: 'board-tile', href: boardHref(b.id), 'data-nav': true, 'data-testid': 'board-link', 'data-board-id': b.id,
        }, h('span', { class: 'board-tile-name' }, b.name || b.id), h('span', { class: 'board-tile-id' }, `/${b.id}`)))));
    } catch (e) {
      if (!this.alive) return;
      if (e.status === 401) return signInPage();
      this.listEl.removeAttribute('aria-busy');
      this.listEl.replaceChildren(h('li', { class: 'empty' },
        `Could not load the boards: ${e.message} `,
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => this.load() }, 'Try again')));
    }
  }

  async create(nameInput, idInput, err, form) {
    const name = nameInput.value.trim();
    const id = idInput.value.trim();
    const fail = (msg, input) => {
      err.textContent = msg;
      err.hidden = false;
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      }
    };
    nameInput.removeAttribute('aria-invalid');
    idInput.removeAttribute('aria-invalid');
    err.hidden = true;
    if (!name) return fail('Give the board a name.', nameInput);
    if (id && !BOARD_ID_RE.test(id)) return fail('The address may hold lower-case letters, digits, “-” and “_”, and must start with a letter or digit.', idInput);
    const body = { name };
    const slug = id || slugify(name);
    if (slug) body.id = slug;
    // Submitting the same board again after a failure reuses the key, so it is created once.
    const sig = JSON.stringify(body);
    if (this.createSig !== sig) {
      this.createSig = sig;
      this.createKey = randomId();
    }
    const btn = form.querySelector('button[type="submit"]');
    btn.disabled = true;
    try {
      const r = await api.createBoard(body, this.createKey);
      this.createSig = null;
      const board = (r.data && (r.data.board || r.data)) || {};
      toast(`Board “${board.name || name}” created.`, { kind: 'success' });
      navigate(boardHref(board.id || slug));
    } catch (e) {
      if (e.status === 409) {
        fail(`A board with the address “${slug}” exists already. Choose another address, or open it from the list.`, idInput);
      } else if (e.status === 422 || e.status === 400) {
        fail(e.message, e.field === 'id' ? idInput : nameInput);
      } else if (e.status === 401) {
        signInPage();
      } else {
        fail(`Could not create the board: ${e.message}`, null);
      }
    } finally {
      btn.disabled = false;
    }
  }
}

function slugify(s) {
  return String(s || '').toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9_-]+/g, '-').replace(/^[-_]+|-+$/g, '').slice(0, 64);
}

class BoardPage {
  constructor(boardId) {
    this.boardId = boardId;
    this.buffer = [];
    this.resyncing = null;
    this.alive = true;
    this.wasLive = false;
  }

  async start() {
    document.title = `${this.boardId} · RT Board`;
    setBadge(forcedTransport() || 'ws', 'connecting');
    renderPresence(app.me ? [{ userId: app.me, name: app.meName }] : [], false);
    main.replaceChildren(h('div', { class: 'board-loading', role: 'status' }, 'Loading the board…'));

    const boardId = this.boardId;
    const store = new BoardStore(boardId);
    store.me = app.me;
    this.store = store;
    this.collab = new Collab({
      boardId,
      send: (msg) => (this.conn ? this.conn.send(msg) : false),
      getMe: () => app.me,
      onChange: () => {
        if (this.view) this.view.schedule();
        this.renderPresence();
        if (this.editor) this.editor.renderTyping();
      },
    });
    const nameOf = (id) => (id === app.me ? app.meName || id : this.collab.nameOf(id));
    this.actions = new Actions({
      store, boardId, nameOf,
      getMe: () => app.me,
      resync: (why) => this.resync(why),
      reopenEditor: (taskId, draft, error) => this.editor.open(taskId, draft, error),
    });
    this.editor = new TaskEditor({
      store, actions: this.actions, collab: this.collab, nameOf,
      getMe: () => app.me,
      knownUsers: () => this.knownUsers(),
    });

    try {
      await this.loadSnapshot();
    } catch (e) {
      if (!this.alive) return;
      this.teardown();
      if (e.status === 401) return signInPage();
      hideBadge();
      const back = h('a', { class: 'btn', href: homeHref(), 'data-nav': true }, 'All boards');
      if (e.status === 404) {
        return messagePage('Board not found', `There is no board “${boardId}”, or it was deleted.`, [back]);
      }
      if (e.status === 403) {
        return messagePage('No access', `You (${app.meName || 'this user'}) may not open the board “${boardId}”.`, [back]);
      }
      return messagePage('Could not load the board', e.message, [
        h('button', { type: 'button', class: 'btn btn-primary', onclick: () => route() }, 'Try again'), back]);
    }
    if (!this.alive) return;

    const bar = h('nav', { class: 'board-nav', 'aria-label': 'Board navigation' },
      h('a', { href: homeHref(), 'data-nav': true, class: 'back-link', 'data-testid': 'all-boards' }, '← All boards'));
    const host = h('div', { class: 'board-host' });
    main.replaceChildren(bar, host);
    this.view = new BoardView(host, {
      store, actions: this.actions, collab: this.collab, editor: this.editor, nameOf, getMe: () => app.me,
    });
    this.view.render();
    this.updateTitle();
    this.unsubscribe = store.subscribe((d) => this.onStoreChange(d));

    this.conn = new LiveConnection({
      boardId,
      forced: forcedTransport(),
      getCursor: () => store.lastEventId,
      onEvent: (ev) => this.onEvent(ev),
      onReset: () => this.resync('reset'),
      onMessage: (msg) => this.collab.handle(msg),
      onUser: (u) => setMe(u),
      onState: (transport, state) => this.onConnState(transport, state),
      onFatal: (kind) => this.onFatal(kind),
    });
    this.conn.start();
  }

  teardown() {
    this.alive = false;
    if (this.conn) this.conn.stop();
    if (this.collab) this.collab.destroy();
    if (this.editor) this.editor.destroy();
    if (this.unsubscribe) this.unsubscribe();
  }

  destroy() {
    this.teardown();
    hideBadge();
    renderPresence([], false);
  }

  onMe() {
    if (this.store) this.store.me = app.me;
    this.renderPresence();
  }

  knownUsers() {
    const ids = new Set();
    if (app.me) ids.add(app.me);
    for (const u of this.collab.users.keys()) ids.add(u);
    for (const t of this.store.tasks.values()) {
      for (const id of [t.assignee, t.createdBy, t.updatedBy]) if (id) ids.add(String(id));
    }
    return [...ids].sort();
  }

  renderPresence() {
    if (!this.alive) return;
    renderPresence(this.collab.presentUsers(app.me, app.meName), this.collab.enabled);
  }

  updateTitle() {
    const name = this.store.board ? this.store.board.name || this.boardId : this.boardId;
    document.title = `${name} · RT Board`;
  }

  // ---- state synchronisation ----

  async loadSnapshot() {
    const started = Date.now();
    const r = await api.getBoard(this.boardId);
    const body = r.body || {};
    const data = body.data || {};
    const last = body.lastEventId ?? (data.board && data.board.lastEventId) ?? 0;
    this.store.load(data, last, started);
  }

  onEvent(ev) {
    if (!this.alive) return;
    if (this.resyncing) {
      this.buffer.push(ev);
      return;
    }
    const r = this.store.receive(ev);
    if (r.status === 'gap') {
      this.buffer.push(ev);
      this.resync('gap');
    }
  }

  /** Reload the snapshot (after a gap, a reset, or an unconfirmed operation). Single flight. */
  resync(reason) {
    if (this.resyncing) return this.resyncing;
    this.resyncing = (async () => {
      for (let attempt = 0; this.alive; attempt++) {
        try {
          await this.loadSnapshot();
          break;
        } catch (e) {
          if (e.status === 404) {
            this.onFatal('not_found');
            break;
          }
          await new Promise((res) => setTimeout(res, backoffDelay(attempt)));
        }
      }
      const buffered = this.buffer.sort((a, b) => Number(a.id) - Number(b.id));
      this.buffer = [];
      this.resyncing = null;
      if (reason === 'reset') announce('The board was reloaded from the server.');
      for (const ev of buffered) this.onEvent(ev);
    })();
    return this.resyncing;
  }

  onStoreChange(detail) {
    if (!this.alive) return;
    this.view.schedule();
    if (detail.type === 'event') this.describe(detail.event, detail.before);
    if (this.store.deleted) this.onBoardDeleted(this.store.deleted);
    this.updateTitle();
  }

  describe(ev, before) {
    const d = ev.data || {};
    if (d.task && ev.type !== 'task_deleted' && ev.actor !== app.me) this.view.flash(d.task.id);
    if (!ev.actor || ev.actor === app.me) return;
    const who = this.collab.nameOf(ev.actor);
    const title = (t) => `“${(t && t.title) || 'a task'}”`;
    const listName = (id) => this.store.listName(id) || 'another list';
    let text = '';
    switch (ev.type) {
      case 'task_created': text = `${who} added ${title(d.task)} to ${listName(d.task && d.task.listId)}`; break;
      case 'task_updated': text = `${who} edited ${title(d.task)}`; break;
      case 'task_moved': text = `${who} moved ${title(d.task)} to ${listName(d.task && d.task.listId)}`; break;
      case 'task_deleted': text = `${who} deleted ${title(before)}`; break;
      case 'list_created': text = `${who} added the list “${d.list ? d.list.name : ''}”`; break;
      case 'list_updated': text = `${who} renamed a list to “${d.list ? d.list.name : ''}”`; break;
      case 'list_deleted': text = `${who} deleted the list “${before ? before.name : ''}”`; break;
      case 'board_updated': text = `${who} renamed the board to “${d.board ? d.board.name : ''}”`; break;
      default: break;
    }
    if (text) announce(text);
  }

  onBoardDeleted(ev) {
    if (!this.alive) return;
    const who = ev && ev.actor && ev.actor !== app.me ? this.collab.nameOf(ev.actor) : null;
    const name = this.store.board ? this.store.board.name : this.boardId;
    this.teardown();
    hideBadge();
    renderPresence([], false);
    messagePage('This board was deleted', `${who ? `${who} deleted` : 'Someone deleted'} the board “${name}”.`,
      [h('a', { class: 'btn btn-primary', href: homeHref(), 'data-nav': true }, 'All boards')]);
  }

  onFatal(kind) {
    if (!this.alive) return;
    if (kind === 'not_found') {
      this.onBoardDeleted(null);
      return;
    }
    this.teardown();
    hideBadge();
    messagePage('No access', `You may no longer open the board “${this.boardId}”.`,
      [h('a', { class: 'btn', href: homeHref(), 'data-nav': true }, 'All boards')]);
  }

  onConnState(transport, state) {
    if (!this.alive && state !== 'stopped') return;
    if (state === 'stopped') return;
    setBadge(transport, state);
    this.collab.setEnabled(state === 'live' && transport === 'ws');
    this.renderPresence();
    if (state === 'live' && this.wasDown) announce(`Reconnected: live updates over ${TRANSPORT_LABELS[transport]}.`);
    if (state === 'live') {
      this.wasLive = true;
      this.wasDown = false;
    } else if ((state === 'reconnecting' || state === 'offline') && this.wasLive && !this.wasDown) {
      this.wasDown = true;
      announce('Connection lost; changes by others will appear once it is back.');
    }
  }
}

// ------------------------------------------------------------------ start

function setupBadge() {
  $('conn-badge').addEventListener('click', () => {
    const page = app.page;
    if (!page || !page.conn) return;
    if (page.conn.state === 'live') {
      toast(`Live updates over ${TRANSPORT_LABELS[page.conn.transport]}; up to date with change #${page.store.lastEventId}.`);
    } else {
      page.conn.retryNow();
    }
  });
}

setupUserMenu();
setupBadge();
route();
