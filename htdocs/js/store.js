// Board state: the server's truth (snapshot + events applied strictly in id order) and, on top
// of it, an overlay of the local user's pending operations (optimistic updates).
//
// Server truth changes only through load() (a snapshot) and receive() (an event), plus two
// narrow exceptions that cannot reorder anything: list/board answers from REST, and the content
// fields of a newer task version learnt from a 412 answer (softUpdateTask).
//
// Positions: a task's `position` is its index in its list. Like the server, applying an insert
// at position p shifts the list's tasks at >= p down by one, and removing a task shifts the ones
// after it up by one. Ordering only compares positions, so this stays correct whatever base the
// server counts from.
//
// Pending operations stay visible until the event that carries their effect has been applied
// (or a snapshot fetched after their answer has been loaded), so a card never jumps back and forth.

export const BOARD_EVENT_TYPES = [
  'board_updated', 'board_deleted',
  'list_created', 'list_updated', 'list_deleted',
  'task_created', 'task_updated', 'task_moved', 'task_deleted',
];
const BOARD_EVENT_SET = new Set(BOARD_EVENT_TYPES);
export const isBoardEventType = (t) => BOARD_EVENT_SET.has(t);

const CONTENT_FIELDS = ['title', 'description', 'assignee', 'version', 'updatedAt', 'updatedBy'];

function numOr(v, d) {
  return typeof v === 'number' && Number.isFinite(v) ? v : d;
}

export function comparePos(a, b) {
  return (numOr(a.position, 0) - numOr(b.position, 0))
    || String(a.createdAt || '').localeCompare(String(b.createdAt || ''))
    || String(a.id).localeCompare(String(b.id));
}

export class BoardStore {
  constructor(boardId) {
    this.boardId = boardId;
    this.me = null;
    this.board = null;
    this.lists = new Map();
    this.tasks = new Map();
    this.lastEventId = 0;
    this.loaded = false;
    this.deleted = null; // the board_deleted event, once seen
    this.seen = new Map(); // taskId -> highest version applied from the server; Infinity once deleted
    this.answered = new Map(); // taskId -> highest version returned by our own REST calls
    this.ops = [];
    this.listeners = new Set();
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  _emit(detail) {
    for (const fn of this.listeners) fn(detail);
  }

  // ---------------------------------------------------------------- server truth

  /** Load a snapshot {board, lists, tasks}; fetchStartedAt is when its request was sent. */
  load(data, lastEventId, fetchStartedAt = 0) {
    const before = new Set(this.tasks.keys());
    this.board = { ...(data.board || { id: this.boardId, name: this.boardId }) };
    this.lists = new Map((data.lists || []).map((l) => [l.id, { ...l }]));
    this.tasks = new Map((data.tasks || []).map((t) => [t.id, { ...t }]));
    for (const t of this.tasks.values()) {
      this.seen.set(t.id, Math.max(this.seen.get(t.id) ?? -1, numOr(t.version, 0)));
    }
    for (const id of before) if (!this.tasks.has(id)) this.seen.set(id, Infinity);
    this.lastEventId = Number(lastEventId ?? this.board.lastEventId ?? 0) || 0;
    this.board.lastEventId = this.lastEventId;
    this.loaded = true;
    // A snapshot requested after an operation's answer already contains its effect.
    this.ops = this.ops.filter((op) => !(op.answeredAt && op.answeredAt <= fetchStartedAt));
    this._settleOps();
    this._emit({ type: 'snapshot' });
  }

  /**
   * Offer one board event. Returns {status: 'applied'|'duplicate'|'gap'|'ignored', before}.
   * 'duplicate': id <= lastEventId, skipped. 'gap': id > lastEventId + 1, nothing applied
   * (the caller re-fetches the snapshot).
   */
  receive(ev) {
    const id = Number(ev && ev.id);
    if (!Number.isInteger(id) || id <= 0) return { status: 'ignored' };
    if (ev.boardId && ev.boardId !== this.boardId) return { status: 'ignored' };
    if (!this.loaded) return { status: 'gap' };
    if (id <= this.lastEventId) return { status: 'duplicate' };
    if (id > this.lastEventId + 1) return { status: 'gap' };
    const before = this._apply(ev);
    this.lastEventId = id;
    if (this.board) this.board.lastEventId = id;
    this._settleOps();
    this._emit({ type: 'event', event: ev, before });
    return { status: 'applied', before };
  }

  _apply(ev) {
    const d = (ev.data && typeof ev.data === 'object') ? ev.data : {};
    switch (ev.type) {
      case 'board_updated':
        if (d.board) this.board = { ...this.board, ...d.board };
        return null;
      case 'board_deleted':
        this.deleted = ev;
        return null;
      case 'list_created':
      case 'list_updated':
        if (d.list && d.list.id != null) {
          this.lists.set(d.list.id, { ...(this.lists.get(d.list.id) || {}), ...d.list });
        }
        return null;
      case 'list_deleted': {
        const listId = d.listId ?? (d.list && d.list.id);
        const before = this.lists.get(listId) || null;
        this.lists.delete(listId);
        for (const t of [...this.tasks.values()]) {
          if (t.listId === listId) {
            this.tasks.delete(t.id);
            this.seen.set(t.id, Infinity);
          }
        }
        return before;
      }
      case 'task_created':
      case 'task_updated':
      case 'task_moved':
        if (d.task && d.task.id != null) {
          const before = this._placeTask(d.task);
          if (ev.type === 'task_created' && ev.actor && ev.actor === this.me) this._bindCreate(d.task);
          return before;
        }
        return null;
      case 'task_deleted': {
        const taskId = d.taskId ?? (d.task && d.task.id);
        const before = this.tasks.get(taskId) || null;
        this.lastDeletion = ev;
        if (before) {
          this.tasks.delete(taskId);
          this._shift(before.listId, (p) => p > numOr(before.position, 0), -1, taskId);
        }
        this.seen.set(taskId, Infinity);
        return before;
      }
      default:
        return null; // a type this client does not know: the id still advances
    }
  }

  _shift(listId, pred, delta, exceptId) {
    for (const t of this.tasks.values()) {
      if (t.listId === listId && t.id !== exceptId && pred(numOr(t.position, 0))) {
        t.position = numOr(t.position, 0) + delta;
      }
    }
  }

  _appendPosition(listId, exceptId) {
    let max = -1;
    for (const t of this.tasks.values()) {
      if (t.listId === listId && t.id !== exceptId) max = Math.max(max, numOr(t.position, 0));
    }
    return max + 1;
  }

  _placeTask(task) {
    const prev = this.tasks.get(task.id) || null;
    let next = { ...task };
    if (typeof next.position !== 'number') next.position = this._appendPosition(next.listId, next.id);
    if (prev && numOr(prev.version, 0) > numOr(task.version, 0)) {
      // A newer version's content is already known (from a 412 answer); keep it, take the place.
      next = { ...prev, listId: next.listId, position: next.position };
    }
    if (prev && prev.listId === next.listId && prev.position === next.position) {
      this.tasks.set(task.id, next);
    } else {
      if (prev) this._shift(prev.listId, (p) => p > numOr(prev.position, 0), -1, task.id);
      this._shift(next.listId, (p) => p >= next.position, +1, task.id);
      this.tasks.set(task.id, next);
    }
    this.seen.set(task.id, Math.max(this.seen.get(task.id) ?? -1, numOr(task.version, 0)));
    return prev ? { ...prev } : null;
  }

  /** Content of a newer task version (from a 412 answer); never moves anything. */
  softUpdateTask(current) {
    const t = this.tasks.get(current.id);
    if (!t || numOr(current.version, 0) <= numOr(t.version, 0)) return;
    for (const f of CONTENT_FIELDS) if (f in current) t[f] = current[f];
    this._emit({ type: 'local' });
  }

  /** A list as answered by the server (create/rename); lists carry no ordering state. */
  upsertList(list) {
    if (!list || list.id == null) return;
    this.lists.set(list.id, { ...(this.lists.get(list.id) || {}), ...list });
    this._emit({ type: 'local' });
  }

  removeListLocal(listId) {
    if (!this.lists.has(listId)) return;
    this.lists.delete(listId);
    for (const t of [...this.tasks.values()]) {
      if (t.listId === listId) {
        this.tasks.delete(t.id);
        this.seen.set(t.id, Infinity);
      }
    }
    this._emit({ type: 'local' });
  }

  setBoard(board) {
    if (!board) return;
    this.board = { ...this.board, ...board, lastEventId: this.lastEventId };
    this._emit({ type: 'local' });
  }

  // ---------------------------------------------------------------- pending operations

  addOp(op) {
    op.startedAt = Date.now();
    this.ops.push(op);
    this._emit({ type: 'ops' });
    return op;
  }

  removeOp(op) {
    const i = this.ops.indexOf(op);
    if (i >= 0) {
      this.ops.splice(i, 1);
      this._emit({ type: 'ops' });
    }
  }

  hasOp(op) {
    return this.ops.includes(op);
  }

  /** The server answered op (with task `answer` when there is one). */
  markAnswered(op, answer) {
    op.answeredAt = Date.now();
    if (answer && answer.id != null) {
      op.answerVersion = numOr(answer.version, 0);
      this.answered.set(answer.id, Math.max(this.answered.get(answer.id) ?? -1, op.answerVersion));
    }
    this._settleOps();
    this._emit({ type: 'ops' });
  }

  /** The version to send in If-Match for a task. */
  knownVersion(taskId) {
    const t = this.tasks.get(taskId);
    const v = t ? numOr(t.version, 0) : 0;
    return Math.max(v, this.answered.get(taskId) ?? -1);
  }

  _bindCreate(task) {
    const op = this.ops.find((o) => o.kind === 'create' && o.serverId == null
      && o.listId === task.listId && o.task.title === task.title);
    if (op) op.serverId = task.id;
  }

  _satisfied(op) {
    switch (op.kind) {
      case 'create':
        return op.serverId != null && this.seen.has(op.serverId);
      case 'edit':
      case 'move':
        return op.answeredAt != null && op.answerVersion != null
          && (this.seen.get(op.taskId) ?? -1) >= op.answerVersion;
      case 'delete':
        return this.seen.get(op.taskId) === Infinity;
      default:
        return false;
    }
  }

  _settleOps() {
    const before = this.ops.length;
    this.ops = this.ops.filter((op) => !this._satisfied(op));
    return before !== this.ops.length;
  }

  // ---------------------------------------------------------------- views

  /** Lists in order, each with its tasks in order, with pending operations applied. */
  view() {
    const lists = [...this.lists.values()].map((l) => ({ ...l }));
    for (const op of this.ops) {
      if (op.kind === 'createList' && !lists.some((l) => l.id === (op.serverId ?? op.tempId))) {
        lists.push({ id: op.serverId ?? op.tempId, boardId: this.boardId, name: op.name,
          position: Number.MAX_SAFE_INTEGER, _pending: true, _temp: op.serverId == null });
      } else if (op.kind === 'renameList') {
        const l = lists.find((x) => x.id === op.listId);
        if (l) { l.name = op.name; l._pending = true; }
      } else if (op.kind === 'deleteList') {
        const i = lists.findIndex((x) => x.id === op.listId);
        if (i >= 0) lists.splice(i, 1);
      }
    }
    lists.sort((a, b) => comparePos(a, b));

    const cols = new Map(lists.map((l) => [l.id, []]));
    for (const t of this.tasks.values()) {
      const col = cols.get(t.listId);
      if (col) col.push(t);
    }
    for (const col of cols.values()) col.sort(comparePos);

    const find = (id) => {
      for (const arr of cols.values()) {
        const i = arr.findIndex((t) => t.id === id);
        if (i >= 0) return { arr, i };
      }
      return null;
    };

    for (const op of this.ops) {
      switch (op.kind) {
        case 'create': {
          const id = op.serverId ?? op.tempId;
          if (find(id)) break;
          const col = cols.get(op.listId);
          if (col) col.push({ ...op.task, id, listId: op.listId, _pending: true, _temp: op.serverId == null });
          break;
        }
        case 'edit': {
          const loc = find(op.taskId);
          if (loc) loc.arr[loc.i] = { ...loc.arr[loc.i], ...op.fields, _pending: true };
          break;
        }
        case 'move': {
          const loc = find(op.taskId);
          const dst = cols.get(op.listId);
          if (!loc || !dst) break;
          const [t] = loc.arr.splice(loc.i, 1);
          const index = Math.max(0, Math.min(op.index, dst.length));
          dst.splice(index, 0, { ...t, listId: op.listId, _pending: true });
          break;
        }
        case 'delete': {
          const loc = find(op.taskId);
          if (loc) loc.arr.splice(loc.i, 1);
          break;
        }
        default:
          break;
      }
    }

    return { board: this.board, lists: lists.map((list) => ({ list, tasks: cols.get(list.id) || [] })) };
  }

  /** One task as the user sees it (pending operations applied), or null. */
  viewTask(taskId) {
    for (const col of this.view().lists) {
      const t = col.tasks.find((x) => x.id === taskId);
      if (t) return t;
    }
    return null;
  }

  // DOM attributes and form values hold ids as text, while the server may use numbers:
  // these map such a value back to the id as the state holds it.
  resolveTaskId(value) {
    if (value == null) return value;
    const key = String(value);
    for (const id of this.tasks.keys()) if (String(id) === key) return id;
    for (const op of this.ops) {
      if (op.kind === 'create' && String(op.serverId ?? op.tempId) === key) return op.serverId ?? op.tempId;
    }
    return value;
  }

  resolveListId(value) {
    if (value == null) return value;
    const key = String(value);
    for (const id of this.lists.keys()) if (String(id) === key) return id;
    for (const op of this.ops) {
      if (op.kind === 'createList' && String(op.serverId ?? op.tempId) === key) return op.serverId ?? op.tempId;
    }
    return value;
  }

  listName(listId) {
    const l = this.lists.get(listId);
    if (l) return l.name;
    const op = this.ops.find((o) => o.kind === 'createList' && (o.serverId ?? o.tempId) === listId);
    return op ? op.name : '';
  }
}
