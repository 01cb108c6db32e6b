// Collaboration over the WebSocket: who is viewing the board (presence) and who is typing on
// which card. On other transports it stays quietly off: presence shows only the local user and no
// typing messages are sent or shown.
//
// Presence: the server sends the board's state first (`presence`: version, count and the first page
// of users), then one `presence_diff` per change window (who entered the first page, who left it, the
// new count), each naming the version it applies to (`base`). A diff for another version than ours
// means we missed one: we ask for the state again.

const TYPING_REFRESH_MS = 2000; // resend "typing" this often while the user keeps typing
const TYPING_IDLE_MS = 3000; // send "stop_typing" after this long without a keystroke
const TYPING_EXPIRE_MS = 6000; // forget a remote "typing" not refreshed for this long

function userOf(msg) {
  const u = (msg.user && typeof msg.user === 'object') ? msg.user : msg;
  const userId = u.userId ?? u.id ?? (typeof msg.user === 'string' ? msg.user : null);
  if (userId == null) return null;
  return { userId: String(userId), name: u.name || String(userId) };
}

export class Collab {
  /**
   * opts: boardId, send(msg) -> boolean, onChange(), getMe() -> userId|null
   */
  constructor({ boardId, send, onChange, getMe }) {
    this.boardId = boardId;
    this.send = send;
    this.onChange = onChange;
    this.getMe = getMe;
    this.enabled = false;
    this.users = new Map(); // userId -> {userId, name}: the first page, in the server's order
    this.count = 0; // users on the board, the first page or not
    this.version = null; // the presence version we hold (null: none yet)
    this.names = new Map(); // userId -> display name, remembered even after they leave
    this.typing = new Map(); // taskId -> Map(userId -> {name, until})
    this.mine = null; // {taskId, lastSent, idleTimer}
    this.sweeper = setInterval(() => this.expire(), 1000);
  }

  destroy() {
    clearInterval(this.sweeper);
    this.stopTyping();
  }

  nameOf(userId) {
    if (userId == null) return '';
    return this.names.get(String(userId)) || String(userId);
  }

  rememberName(userId, name) {
    if (userId != null && name) this.names.set(String(userId), name);
  }

  /** The live transport changed: collaboration needs a live WebSocket. */
  setEnabled(on) {
    if (on === this.enabled) return;
    this.enabled = on;
    if (!on) {
      this.users.clear();
      this.count = 0;
      this.version = null;
      this.typing.clear();
      if (this.mine) {
        clearTimeout(this.mine.idleTimer);
        this.mine = null;
      }
    }
    this.onChange();
  }

  /** An ephemeral message from the server. */
  handle(raw) {
    const msg = { ...(raw.data && typeof raw.data === 'object' ? raw.data : {}), ...raw };
    if (msg.boardId && msg.boardId !== this.boardId) return;
    const me = this.getMe();
    switch (msg.type) {
      case 'presence': {
        if (msg.offset) return; // a later page: the header shows the first one only
        this.users.clear();
        this.addUsers(msg.users);
        this.count = Number(msg.count) || this.users.size;
        this.version = msg.version ?? null;
        break;
      }
      case 'presence_diff': {
        if (this.version == null || msg.version <= this.version) return; // in what we hold
        if (msg.base !== this.version) {
          // a diff went missing: ask for the whole state again
          this.version = null;
          this.send({ type: 'presence', boardId: this.boardId });
          return;
        }
        for (const id of Array.isArray(msg.left) ? msg.left : []) {
          this.users.delete(String(id));
          for (const m of this.typing.values()) m.delete(String(id));
        }
        this.addUsers(msg.joined);
        this.count = Number(msg.count) || 0;
        this.version = msg.version;
        break;
      }
      case 'user_typing': {
        const x = userOf(msg);
        if (!x || x.userId === me || msg.taskId == null) return;
        this.rememberName(x.userId, x.name);
        const key = String(msg.taskId);
        if (!this.typing.has(key)) this.typing.set(key, new Map());
        this.typing.get(key).set(x.userId, { name: this.nameOf(x.userId), until: Date.now() + TYPING_EXPIRE_MS });
        break;
      }
      case 'user_stopped_typing': {
        const x = userOf(msg);
        if (!x) return;
        if (msg.taskId != null) {
          const m = this.typing.get(String(msg.taskId));
          if (m) m.delete(x.userId);
        } else {
          for (const m of this.typing.values()) m.delete(x.userId);
        }
        break;
      }
      default:
        return; // cursors and anything newer are not shown
    }
    this.onChange();
  }

  addUsers(list) {
    for (const u of Array.isArray(list) ? list : []) {
      const x = userOf(u);
      if (x) {
        this.users.set(x.userId, x);
        this.rememberName(x.userId, x.name);
      }
    }
  }

  expire() {
    const now = Date.now();
    let changed = false;
    for (const [taskId, m] of this.typing) {
      for (const [userId, t] of m) {
        if (t.until <= now) {
          m.delete(userId);
          changed = true;
        }
      }
      if (m.size === 0) this.typing.delete(taskId);
    }
    if (changed) this.onChange();
  }

  /** People viewing the board (the first page), the local user first, in the order they came. */
  presentUsers(meId, meName) {
    const list = [...this.users.values()].filter((u) => u.userId !== meId);
    if (meId) list.unshift(this.users.get(meId) || { userId: meId, name: meName || meId });
    return list;
  }

  /** How many people view the board, the local user included. */
  presentCount(meId) {
    if (!meId || this.users.has(meId)) return Math.max(this.count, this.users.size);
    // not on the first page: counted, unless the count is that page (our arrival is on its way)
    return this.count <= this.users.size ? this.users.size + 1 : this.count;
  }

  /** [{userId, name}] typing on a card, without the local user. */
  typingOn(taskId) {
    const m = this.typing.get(String(taskId));
    if (!m) return [];
    return [...m.entries()].map(([userId, t]) => ({ userId, name: t.name }));
  }

  // ---- the local user typing ----

  /** Call on every keystroke in a card's title or description. */
  noteTyping(taskId) {
    if (!this.enabled || taskId == null) return;
    const now = Date.now();
    if (this.mine && this.mine.taskId !== taskId) this.stopTyping();
    if (!this.mine) this.mine = { taskId, lastSent: 0, idleTimer: null };
    if (now - this.mine.lastSent >= TYPING_REFRESH_MS) {
      if (this.send({ type: 'typing', boardId: this.boardId, taskId })) this.mine.lastSent = now;
    }
    clearTimeout(this.mine.idleTimer);
    this.mine.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    if (!this.mine) return;
    clearTimeout(this.mine.idleTimer);
    const { taskId, lastSent } = this.mine;
    this.mine = null;
    if (lastSent) this.send({ type: 'stop_typing', boardId: this.boardId, taskId });
  }
}
