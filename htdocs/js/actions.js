// User actions with optimistic updates.
//
// Each action adds a pending operation to the store (the UI shows it at once), calls the API,
// then marks the operation answered; the store drops it when the matching event arrives.
// On failure the operation is dropped, so the UI falls back to the server's truth, and the user
// is told what happened.
//
// Task PATCH/DELETE (and move) carry If-Match with the task's version. On 412 an edit is retried
// on top of the current version when nobody touched the fields being changed; otherwise the
// other person's version is kept and the user can reopen their draft.
// POSTs carry an Idempotency-Key that a retry reuses.

import { api, randomId } from './api.js';
import { toast } from './ui.js';

export const TITLE_MAX = 200;
export const DESCRIPTION_MAX = 10000;
const SETTLE_TIMEOUT_MS = 15000;

const FIELD_LABELS = { title: 'title', description: 'description', assignee: 'assignee' };

function same(a, b) {
  return (a ?? null) === (b ?? null);
}

function quote(s) {
  const t = String(s ?? '');
  return `“${t.length > 60 ? `${t.slice(0, 57)}…` : t}”`;
}

export function validateTitle(title) {
  if (!title) return 'A task needs a title.';
  if (title.length > TITLE_MAX) return `Keep the title under ${TITLE_MAX + 1} characters (it has ${title.length}).`;
  return null;
}

export class Actions {
  /**
   * opts: store, boardId, getMe(), nameOf(userId), resync(reason) -> Promise,
   * reopenEditor(taskId, draft, error) to bring back a draft the server refused.
   */
  constructor({ store, boardId, getMe, nameOf, resync, reopenEditor }) {
    this.store = store;
    this.boardId = boardId;
    this.getMe = getMe;
    this.nameOf = nameOf;
    this.resync = resync;
    this.reopenEditor = reopenEditor;
  }

  // Drop an answered operation that its event never confirmed (e.g. the stream is down):
  // a snapshot fetched now contains its effect.
  watchSettle(op) {
    setTimeout(() => {
      if (this.store.hasOp(op)) this.resync('settle');
    }, SETTLE_TIMEOUT_MS);
  }

  networkOrServerError(e, what, retry) {
    const msg = e.isNetwork
      ? `Could not ${what}: the server cannot be reached.`
      : `Could not ${what}: ${e.message}`;
    toast(msg, { kind: 'error', action: retry ? { label: 'Retry', run: retry } : null });
  }

  // ------------------------------------------------------------------ tasks

  /** Returns {ok} or {ok: false, field, message} for the form to show. */
  async createTask(listId, rawTitle, { key = randomId(), description = '', assignee = null } = {}) {
    const title = String(rawTitle || '').trim();
    const invalid = validateTitle(title);
    if (invalid) return { ok: false, field: 'title', message: invalid };
    const me = this.getMe();
    const op = this.store.addOp({
      kind: 'create',
      tempId: `tmp-${randomId()}`,
      listId,
      task: {
        boardId: this.boardId, listId, title, description, assignee, version: 0,
        createdBy: me, updatedBy: me, createdAt: new Date().toISOString(),
      },
    });
    try {
      const body = { listId, title };
      if (description) body.description = description;
      if (assignee) body.assignee = assignee;
      const r = await api.createTask(this.boardId, body, key);
      const task = r.data || {};
      if (task.id != null) op.serverId = task.id;
      this.store.markAnswered(op, task);
      this.watchSettle(op);
      return { ok: true, task };
    } catch (e) {
      this.store.removeOp(op);
      if (e.status === 422 || e.status === 400) {
        return { ok: false, field: e.field || 'title', message: e.message };
      }
      if (e.status === 404) {
        toast('That list no longer exists.', { kind: 'warning' });
        return { ok: false, message: 'That list no longer exists.' };
      }
      // Same key on retry: if the first request did reach the server, no second task appears.
      this.networkOrServerError(e, `add ${quote(title)}`, () => this.createTask(listId, title, { key, description, assignee }));
      return { ok: false, message: e.message, reported: true };
    }
  }

  /**
   * Save edited fields of a task. base: the task as the user saw it when they started editing.
   * Returns {ok} | {ok: false, field, message} | {ok: false, conflict: true}.
   */
  async editTask(taskId, fields, base) {
    const changed = {};
    for (const [k, v] of Object.entries(fields)) if (!same(v, base[k])) changed[k] = v;
    // If-Match carries the version the edit started from (or a later one we wrote ourselves).
    const ownVersion = this.store.answered.get(taskId) ?? -1;
    if (Object.keys(changed).length === 0) return { ok: true, unchanged: true };
    if ('title' in changed) {
      const invalid = validateTitle(changed.title);
      if (invalid) return { ok: false, field: 'title', message: invalid };
    }
    const op = this.store.addOp({ kind: 'edit', taskId, fields: changed });
    let version = typeof base.version === 'number'
      ? Math.max(base.version, ownVersion) : this.store.knownVersion(taskId);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const r = await api.updateTask(this.boardId, taskId, changed, version);
        this.store.markAnswered(op, r.data);
        this.watchSettle(op);
        return { ok: true, task: r.data };
      } catch (e) {
        if (e.status === 412) {
          const current = await this.currentOf(taskId, e);
          if (!current) {
            this.store.removeOp(op);
            toast(`${quote(base.title)} was deleted by someone else; your changes were not saved.`, { kind: 'warning' });
            return { ok: false, gone: true };
          }
          const conflicting = Object.keys(changed)
            .filter((f) => !same(current[f], base[f]) && !same(current[f], changed[f]));
          if (conflicting.length === 0) {
            version = current.version; // nobody touched these fields: apply ours on top
            continue;
          }
          this.store.removeOp(op);
          this.store.softUpdateTask(current);
          const who = current.updatedBy && current.updatedBy !== this.getMe()
            ? this.nameOf(current.updatedBy) : 'Someone';
          const what = conflicting.map((f) => FIELD_LABELS[f] || f).join(' and ');
          toast(`${who} changed the ${what} of ${quote(current.title)} while you were editing. `
            + 'Their version is shown; your edit was not saved.', {
            kind: 'warning',
            timeout: 15000,
            action: { label: 'Edit again', run: () => this.reopenEditor(taskId, { ...fields }) },
          });
          return { ok: false, conflict: true, current };
        }
        this.store.removeOp(op);
        if (e.status === 422 || e.status === 400) {
          this.reopenEditor(taskId, { ...fields }, { field: e.field, message: e.message });
          return { ok: false, field: e.field, message: e.message };
        }
        if (e.status === 404) {
          toast(`${quote(base.title)} no longer exists.`, { kind: 'warning' });
          return { ok: false, gone: true };
        }
        this.networkOrServerError(e, `save ${quote(changed.title ?? base.title)}`,
          () => this.reopenEditor(taskId, { ...fields }));
        return { ok: false, message: e.message };
      }
    }
    this.store.removeOp(op);
    toast('This task keeps changing under you; reload it and try again.', { kind: 'warning' });
    return { ok: false };
  }

  /** The current task from a 412 body, else from the server; null if it is gone. */
  async currentOf(taskId, err) {
    if (err.current && err.current.id != null) return err.current;
    try {
      const r = await api.getTask(this.boardId, taskId);
      return r.data;
    } catch {
      return null;
    }
  }

  /**
   * Move a task to index `index` of list `listId` (index counted without the task itself).
   * after: optional promise to wait for before sending (e.g. a save of the same task).
   */
  async moveTask(taskId, listId, index, { after = null } = {}) {
    const before = this.store.viewTask(taskId);
    if (!before || before._temp) return { ok: false };
    const op = this.store.addOp({ kind: 'move', taskId, listId, index });
    if (after) await after.catch(() => {});
    let version = this.store.knownVersion(taskId);
    for (let attempt = 0; attempt < 3; attempt++) {
      const position = this.serverPosition(taskId, listId, op);
      try {
        const r = await api.moveTask(this.boardId, taskId, listId, position, version);
        this.store.markAnswered(op, r.data);
        this.watchSettle(op);
        return { ok: true };
      } catch (e) {
        if (e.status === 412) {
          const current = await this.currentOf(taskId, e);
          if (current) {
            version = current.version; // the move is still what the user wants
            continue;
          }
          this.store.removeOp(op);
          toast(`${quote(before.title)} was deleted by someone else.`, { kind: 'warning' });
          return { ok: false };
        }
        this.store.removeOp(op);
        if (e.status === 404) toast(`${quote(before.title)} or its target list no longer exists.`, { kind: 'warning' });
        else if (e.status === 422 || e.status === 400) toast(`Could not move ${quote(before.title)}: ${e.message}`, { kind: 'error' });
        else this.networkOrServerError(e, `move ${quote(before.title)}`, null);
        return { ok: false };
      }
    }
    this.store.removeOp(op);
    return { ok: false };
  }

  // Where the server should put the task: the index, among the server's own tasks of the
  // target list (without the moving one), of the first server task that follows it on screen.
  serverPosition(taskId, listId, op) {
    const col = this.store.view().lists.find((c) => c.list.id === listId);
    const shown = col ? col.tasks : [];
    const here = shown.findIndex((t) => t.id === taskId);
    const serverTasks = [...this.store.tasks.values()]
      .filter((t) => t.listId === listId && t.id !== taskId)
      .sort((a, b) => a.position - b.position);
    const start = here >= 0 ? here + 1 : Math.min(op.index, shown.length);
    for (let i = start; i < shown.length; i++) {
      const idx = serverTasks.findIndex((t) => t.id === shown[i].id);
      if (idx >= 0) return idx;
    }
    return serverTasks.length;
  }

  async deleteTask(taskId) {
    const before = this.store.viewTask(taskId);
    if (!before || before._temp) return { ok: false };
    const op = this.store.addOp({ kind: 'delete', taskId });
    try {
      await api.deleteTask(this.boardId, taskId, this.store.knownVersion(taskId));
      this.store.markAnswered(op);
      this.watchSettle(op);
      return { ok: true };
    } catch (e) {
      if (e.status === 404) {
        // Already gone: keep it hidden until the event (or a snapshot) confirms it.
        this.store.markAnswered(op);
        this.watchSettle(op);
        return { ok: true };
      }
      this.store.removeOp(op);
      if (e.status === 412) {
        const current = await this.currentOf(taskId, e);
        if (current) {
          this.store.softUpdateTask(current);
          const who = current.updatedBy && current.updatedBy !== this.getMe() ? this.nameOf(current.updatedBy) : 'Someone';
          toast(`${who} changed ${quote(current.title)} after you last saw it, so it was not deleted. `
            + 'Check their changes and delete it again if you still want to.', { kind: 'warning', timeout: 12000 });
        }
        return { ok: false, conflict: true };
      }
      this.networkOrServerError(e, `delete ${quote(before.title)}`, () => this.deleteTask(taskId));
      return { ok: false };
    }
  }

  // ------------------------------------------------------------------ lists and board

  async createList(rawName, key = randomId()) {
    const name = String(rawName || '').trim();
    if (!name) return { ok: false, field: 'name', message: 'A list needs a name.' };
    const op = this.store.addOp({ kind: 'createList', tempId: `tmp-${randomId()}`, name });
    try {
      const r = await api.createList(this.boardId, name, key);
      this.store.upsertList(r.data);
      this.store.removeOp(op);
      return { ok: true, list: r.data };
    } catch (e) {
      this.store.removeOp(op);
      if (e.status === 422 || e.status === 400 || e.status === 409) return { ok: false, field: e.field, message: e.message };
      this.networkOrServerError(e, `add the list ${quote(name)}`, () => this.createList(name, key));
      return { ok: false, message: e.message, reported: true };
    }
  }

  async renameList(listId, rawName) {
    const name = String(rawName || '').trim();
    if (!name) return { ok: false, field: 'name', message: 'A list needs a name.' };
    if (name === this.store.listName(listId)) return { ok: true };
    const op = this.store.addOp({ kind: 'renameList', listId, name });
    try {
      const r = await api.renameList(this.boardId, listId, name);
      this.store.upsertList(r.data || { id: listId, name });
      this.store.removeOp(op);
      return { ok: true };
    } catch (e) {
      this.store.removeOp(op);
      if (e.status === 422 || e.status === 400 || e.status === 409) return { ok: false, field: e.field, message: e.message };
      this.networkOrServerError(e, `rename the list to ${quote(name)}`, null);
      return { ok: false, message: e.message, reported: true };
    }
  }

  async deleteList(listId, cascade) {
    const name = this.store.listName(listId);
    const op = this.store.addOp({ kind: 'deleteList', listId });
    try {
      await api.deleteList(this.boardId, listId, cascade);
      this.store.removeListLocal(listId);
      this.store.removeOp(op);
      return { ok: true };
    } catch (e) {
      this.store.removeOp(op);
      if (e.status === 409) toast(`The list ${quote(name)} still holds tasks.`, { kind: 'warning' });
      else if (e.status === 404) this.store.removeListLocal(listId);
      else this.networkOrServerError(e, `delete the list ${quote(name)}`, null);
      return { ok: false };
    }
  }

  async renameBoard(rawName) {
    const name = String(rawName || '').trim();
    if (!name) return { ok: false, message: 'A board needs a name.' };
    const old = this.store.board ? this.store.board.name : '';
    if (name === old) return { ok: true };
    this.store.setBoard({ name });
    try {
      const r = await api.renameBoard(this.boardId, name);
      if (r.data) this.store.setBoard(r.data.board || r.data);
      return { ok: true };
    } catch (e) {
      this.store.setBoard({ name: old });
      if (e.status === 422 || e.status === 400) return { ok: false, message: e.message };
      this.networkOrServerError(e, 'rename the board', null);
      return { ok: false, message: e.message, reported: true };
    }
  }
}
