// The board page: ties the board's state, the live connection, collaboration and the view
// together, keeps the state in step with the server and tells the user what others change.

import { api, backoffDelay } from './api.js';
import { BoardStore } from './store.js';
import { LiveConnection, forcedTransport, TRANSPORT_LABELS } from './transport.js';
import { Collab } from './collab.js';
import { Actions } from './actions.js';
import { TaskEditor } from './editor.js';
import { BoardView } from './board.js';
import { session, setMe, setBadge, hideBadge, renderPresence, clearBoardStatus } from './header.js';
import { messagePage, signInPage } from './message-page.js';
import { describeEvent } from './narrate.js';
import { homeHref } from './routes.js';
import { h, toast, announce } from './ui.js';

function allBoardsLink(primary = false) {
  return h('a', { class: primary ? 'btn btn-primary' : 'btn', href: homeHref(), 'data-nav': true }, 'All boards');
}

export class BoardPage {
  /** root: the element the page fills; reload(): show the current address afresh. */
  constructor(boardId, { root, reload }) {
    this.boardId = boardId;
    this.root = root;
    this.reload = reload;
    this.buffer = [];
    this.resyncing = null;
    this.alive = true;
    this.wasLive = false;
  }

  async start() {
    document.title = `${this.boardId} · RT Board`;
    setBadge(forcedTransport() || 'ws', 'connecting');
    renderPresence(session.me ? [{ userId: session.me, name: session.meName }] : [], false);
    this.root.replaceChildren(h('div', { class: 'board-loading', role: 'status' }, 'Loading the board…'));

    const boardId = this.boardId;
    const getMe = () => session.me;
    const store = new BoardStore(boardId);
    store.me = session.me;
    this.store = store;
    this.collab = new Collab({
      boardId,
      send: (msg) => (this.conn ? this.conn.send(msg) : false),
      getMe,
      onChange: () => {
        if (this.view) this.view.schedule();
        this.renderPresence();
        if (this.editor) this.editor.renderTyping();
      },
    });
    const nameOf = (id) => (id === session.me ? session.meName || id : this.collab.nameOf(id));
    this.actions = new Actions({
      store, boardId, nameOf, getMe,
      resync: (why) => this.resync(why),
      reopenEditor: (taskId, draft, error) => this.editor.open(taskId, draft, error),
    });
    this.editor = new TaskEditor({
      store, actions: this.actions, collab: this.collab, nameOf, getMe,
      knownUsers: () => this.knownUsers(),
    });

    try {
      await this.loadSnapshot();
    } catch (e) {
      if (this.alive) this.showLoadError(e);
      return;
    }
    if (!this.alive) return;

    const bar = h('nav', { class: 'board-nav', 'aria-label': 'Board navigation' },
      h('a', { href: homeHref(), 'data-nav': true, class: 'back-link', 'data-testid': 'all-boards' }, '← All boards'));
    const host = h('div', { class: 'board-host' });
    this.root.replaceChildren(bar, host);
    this.view = new BoardView(host, {
      store, actions: this.actions, collab: this.collab, editor: this.editor, nameOf, getMe,
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

  showLoadError(e) {
    const { boardId } = this;
    this.teardown();
    if (e.status === 401) return signInPage(this.root);
    hideBadge();
    if (e.status === 404) {
      return messagePage(this.root, 'Board not found', `There is no board “${boardId}”, or it was deleted.`, [allBoardsLink()]);
    }
    if (e.status === 403) {
      return messagePage(this.root, 'No access', `You (${session.meName || 'this user'}) may not open the board “${boardId}”.`, [allBoardsLink()]);
    }
    return messagePage(this.root, 'Could not load the board', e.message, [
      h('button', { type: 'button', class: 'btn btn-primary', onclick: () => this.reload() }, 'Try again'), allBoardsLink()]);
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
    clearBoardStatus();
  }

  onMe() {
    if (this.store) this.store.me = session.me;
    this.renderPresence();
  }

  /** The connection badge was activated: say how things stand, or reconnect now. */
  onBadge() {
    if (!this.conn) return;
    if (this.conn.state === 'live') {
      toast(`Live updates over ${TRANSPORT_LABELS[this.conn.transport]}; up to date with change #${this.store.lastEventId}.`);
    } else {
      this.conn.retryNow();
    }
  }

  knownUsers() {
    const ids = new Set();
    if (session.me) ids.add(session.me);
    for (const u of this.collab.users.keys()) ids.add(u);
    for (const t of this.store.tasks.values()) {
      for (const id of [t.assignee, t.createdBy, t.updatedBy]) if (id) ids.add(String(id));
    }
    return [...ids].sort();
  }

  renderPresence() {
    if (!this.alive) return;
    renderPresence(this.collab.presentUsers(session.me, session.meName), this.collab.enabled,
      this.collab.presentCount(session.me));
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
    if (d.task && ev.type !== 'task_deleted' && ev.actor !== session.me) this.view.flash(d.task.id);
    if (!ev.actor || ev.actor === session.me) return;
    const text = describeEvent(ev, before, this.collab.nameOf(ev.actor), (id) => this.store.listName(id));
    if (text) announce(text);
  }

  onBoardDeleted(ev) {
    if (!this.alive) return;
    const who = ev && ev.actor && ev.actor !== session.me ? this.collab.nameOf(ev.actor) : null;
    const name = this.store.board ? this.store.board.name : this.boardId;
    this.teardown();
    clearBoardStatus();
    messagePage(this.root, 'This board was deleted', `${who ? `${who} deleted` : 'Someone deleted'} the board “${name}”.`,
      [allBoardsLink(true)]);
  }

  onFatal(kind) {
    if (!this.alive) return;
    if (kind === 'not_found') {
      this.onBoardDeleted(null);
      return;
    }
    this.teardown();
    hideBadge();
    messagePage(this.root, 'No access', `You may no longer open the board “${this.boardId}”.`, [allBoardsLink()]);
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
