// The task dialog: edit title, description, assignee and list; delete.
//
// While it is open, changes other people make to the same task flow into the fields the user has
// not touched; touched fields keep the user's text and a notice says someone else changed them.

import { TITLE_MAX, DESCRIPTION_MAX, validateTitle } from './actions.js';
import { formatTime, toast } from './ui.js';

const FIELDS = ['title', 'description', 'assignee'];

export class TaskEditor {
  /**
   * opts: store, actions, collab, getMe(), nameOf(userId), knownUsers() -> [userId]
   */
  constructor({ store, actions, collab, getMe, nameOf, knownUsers }) {
    this.store = store;
    this.actions = actions;
    this.collab = collab;
    this.getMe = getMe;
    this.nameOf = nameOf;
    this.knownUsers = knownUsers;
    this.taskId = null;
    this.base = null;
    this.returnFocus = null;

    // A fresh copy of the dialog per board page, so no listener outlives its page.
    const old = document.getElementById('task-dialog');
    if (old.open) old.close();
    const d = old.cloneNode(true);
    old.replaceWith(d);
    this.dialog = d;
    this.form = d.querySelector('form');
    this.heading = d.querySelector('#task-dialog-heading');
    this.inputs = {
      title: d.querySelector('#edit-title'),
      description: d.querySelector('#edit-description'),
      assignee: d.querySelector('#edit-assignee'),
    };
    this.listSelect = d.querySelector('#edit-list');
    this.notice = d.querySelector('#edit-notice');
    this.meta = d.querySelector('#edit-meta');
    this.typingNote = d.querySelector('#edit-typing');
    this.datalist = d.querySelector('#assignee-options');
    this.errors = {
      title: d.querySelector('#edit-title-error'),
      description: d.querySelector('#edit-description-error'),
      assignee: d.querySelector('#edit-assignee-error'),
    };
    this.inputs.title.maxLength = TITLE_MAX;
    this.inputs.description.maxLength = DESCRIPTION_MAX;

    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
    d.querySelector('[data-testid="edit-cancel"]').addEventListener('click', () => this.close());
    d.querySelector('[data-action="close"]').addEventListener('click', () => this.close());
    d.querySelector('[data-testid="task-delete"]').addEventListener('click', () => this.remove());
    d.addEventListener('cancel', (e) => {
      e.preventDefault();
      this.close();
    });
    // A click on the backdrop (outside the form) closes without saving.
    d.addEventListener('mousedown', (e) => {
      if (e.target === d) this.close();
    });
    for (const f of ['title', 'description']) {
      this.inputs[f].addEventListener('input', () => {
        this.clearError(f);
        if (this.taskId != null) this.collab.noteTyping(this.taskId);
      });
    }
    this.inputs.assignee.addEventListener('input', () => this.clearError('assignee'));
    this.unsubscribe = store.subscribe(() => this.onStoreChange());
  }

  destroy() {
    this.unsubscribe();
    this.close();
  }

  get isOpen() {
    return this.dialog.open;
  }

  /** Open for a task; draft: values to prefill instead of the task's; error: {field, message}. */
  open(taskId, draft = null, error = null) {
    const task = this.store.viewTask(taskId);
    if (!task || task._temp) return;
    if (this.isOpen && this.taskId !== task.id) this.close();
    taskId = task.id;
    this.taskId = taskId;
    // The version the user's edit is based on: sent as If-Match, so a save made over someone
    // else's newer change of the same field is refused (412) instead of overwriting it.
    this.base = {
      title: task.title || '', description: task.description || '', assignee: task.assignee ?? null,
      listId: task.listId, version: task.version,
    };
    this.returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null;

    const values = { ...this.base, ...(draft || {}) };
    this.inputs.title.value = values.title || '';
    this.inputs.description.value = values.description || '';
    this.inputs.assignee.value = values.assignee || '';
    this.fillUsers();
    this.fillLists(values.listId || task.listId);
    this.renderMeta(task);
    this.hideNotice();
    for (const f of FIELDS) this.clearError(f);
    if (error) this.showError(error.field && this.inputs[error.field] ? error.field : 'title', error.message);
    this.dialog.dataset.taskId = taskId;
    this.renderTyping();

    if (!this.dialog.open) this.dialog.showModal();
    const focusField = error && this.inputs[error.field] ? this.inputs[error.field] : this.inputs.title;
    focusField.focus();
    if (!error) focusField.select();
  }

  // Every way of closing goes through here (buttons, Escape, backdrop), and the cleanup runs at
  // once, so reopening right after closing cannot be undone by a late "close" event.
  close() {
    if (this.dialog.open) this.dialog.close();
    if (this.taskId != null) this.cleanup();
  }

  cleanup() {
    this.collab.stopTyping();
    const back = this.returnFocus;
    const taskId = this.taskId;
    this.taskId = null;
    this.base = null;
    this.returnFocus = null;
    delete this.dialog.dataset.taskId;
    // Focus returns to the card (found again: it may have been re-rendered or moved).
    const card = taskId != null
      ? document.querySelector(`[data-testid="task-card"][data-task-id="${CSS.escape(String(taskId))}"]`) : null;
    if (card) card.focus({ preventScroll: false });
    else if (back && document.contains(back)) back.focus();
  }

  fillUsers() {
    this.datalist.replaceChildren();
    for (const userId of this.knownUsers()) {
      const opt = document.createElement('option');
      opt.value = userId;
      const name = this.nameOf(userId);
      if (name && name !== userId) opt.label = name;
      this.datalist.append(opt);
    }
  }

  fillLists(selected) {
    this.listSelect.replaceChildren();
    for (const col of this.store.view().lists) {
      if (col.list._temp) continue;
      const opt = document.createElement('option');
      opt.value = col.list.id;
      opt.textContent = col.list.name;
      if (String(col.list.id) === String(selected)) opt.selected = true;
      this.listSelect.append(opt);
    }
  }

  renderMeta(task) {
    const parts = [];
    if (task.createdBy) parts.push(`Created by ${this.nameOf(task.createdBy)}${task.createdAt ? ` on ${formatTime(task.createdAt)}` : ''}`);
    if (task.updatedBy && task.updatedAt && task.updatedAt !== task.createdAt) {
      parts.push(`last changed by ${this.nameOf(task.updatedBy)} on ${formatTime(task.updatedAt)}`);
    }
    this.meta.textContent = parts.join(', ');
    this.meta.hidden = parts.length === 0;
  }

  renderTyping() {
    if (!this.isOpen || this.taskId == null) {
      this.typingNote.hidden = true;
      return;
    }
    const who = this.collab.typingOn(this.taskId);
    this.typingNote.hidden = who.length === 0;
    this.typingNote.textContent = who.length ? `${who.map((u) => u.name).join(', ')} ${who.length > 1 ? 'are' : 'is'} also editing this task…` : '';
  }

  showNotice(text) {
    this.notice.textContent = text;
    this.notice.hidden = false;
  }

  hideNotice() {
    this.notice.hidden = true;
    this.notice.textContent = '';
  }

  showError(field, message) {
    const input = this.inputs[field];
    const el = this.errors[field];
    if (!input || !el) return;
    el.textContent = message;
    el.hidden = false;
    input.setAttribute('aria-invalid', 'true');
  }

  clearError(field) {
    const input = this.inputs[field];
    const el = this.errors[field];
    if (!input || !el) return;
    el.hidden = true;
    el.textContent = '';
    input.removeAttribute('aria-invalid');
  }

  values() {
    const assignee = this.inputs.assignee.value.trim();
    return {
      title: this.inputs.title.value.trim(),
      description: this.inputs.description.value,
      assignee: assignee === '' ? null : assignee,
    };
  }

  onStoreChange() {
    if (!this.isOpen || this.taskId == null) return;
    const task = this.store.viewTask(this.taskId);
    if (!task) {
      const title = this.base ? this.base.title : '';
      const ev = this.store.lastDeletion;
      const who = ev && ev.actor && ev.actor !== this.getMe() ? this.nameOf(ev.actor) : 'Someone';
      this.close();
      toast(`${who} deleted “${title}” while you had it open.`, { kind: 'warning' });
      return;
    }
    // Keep the list choices current and follow remote changes into untouched fields.
    const chosen = this.store.resolveListId(this.listSelect.value);
    if (String(chosen) === String(this.base.listId) && task.listId !== this.base.listId) {
      this.base.listId = task.listId;
      this.fillLists(task.listId);
    } else {
      this.fillLists(chosen);
    }
    const touched = [];
    for (const f of FIELDS) {
      const remote = f === 'assignee' ? (task.assignee ?? null) : (task[f] || '');
      if (remote === this.base[f]) continue;
      const input = this.inputs[f];
      const current = f === 'assignee' ? (input.value.trim() || null) : input.value;
      const untouched = f === 'title' ? current.trim() === this.base[f] : current === this.base[f];
      if (untouched) {
        input.value = remote || '';
        this.base[f] = remote;
      } else if (!task._pending) {
        touched.push(f);
      }
    }
    if (touched.length) {
      const who = task.updatedBy && task.updatedBy !== this.getMe() ? this.nameOf(task.updatedBy) : 'Someone';
      this.showNotice(`${who} just changed the ${touched.join(' and ')} of this task. Saving keeps your text only if they did not change the same field.`);
    }
    this.renderMeta(task);
    this.renderTyping();
  }

  save() {
    if (this.taskId == null) return;
    const values = this.values();
    const invalid = validateTitle(values.title);
    if (invalid) {
      this.showError('title', invalid);
      this.inputs.title.focus();
      return;
    }
    const taskId = this.taskId;
    const base = { ...this.base };
    const targetList = this.store.resolveListId(this.listSelect.value);
    this.close();
    const edit = this.actions.editTask(taskId, values, base);
    if (targetList && targetList !== base.listId) {
      const col = this.store.view().lists.find((c) => c.list.id === targetList);
      const index = col ? col.tasks.filter((t) => t.id !== taskId).length : 0;
      this.actions.moveTask(taskId, targetList, index, { after: edit });
    }
  }

  remove() {
    if (this.taskId == null) return;
    const taskId = this.taskId;
    this.close();
    this.actions.deleteTask(taskId);
  }
}
