// Renders a board (lists as columns, tasks as cards) and turns clicks and keys into actions
// (dragging cards is dnd.js). Rendering is keyed: columns and cards are created once and then
// updated and moved in place, so focus, half-typed inputs and drags survive live updates.

import { h, avatar, announce, toast, icon, closestCard } from './ui.js';
import { CardDragAndDrop } from './dnd.js';

const KEY_HELP = 'Tab to a card, Enter to open it, Alt+Left/Right to move it to another list, Alt+Up/Down to reorder.';

export class BoardView {
  /**
   * opts: store, actions, collab, editor, getMe(), nameOf(userId)
   */
  constructor(root, { store, actions, collab, editor, getMe, nameOf }) {
    this.root = root;
    this.store = store;
    this.actions = actions;
    this.collab = collab;
    this.editor = editor;
    this.getMe = getMe;
    this.nameOf = nameOf;
    // Both keyed by String(id): the same key a data-* attribute gives back.
    this.columnEls = new Map(); // listId -> {el, header, nameEl, countEl, cardsEl, form, input, error}
    this.cardEls = new Map(); // taskId -> {el, sig}
    this.renderQueued = false;
    this.mount();
  }

  mount() {
    this.titleEl = h('span', { class: 'board-title-text', id: 'board-name', 'data-testid': 'board-name' });
    this.renameBoardBtn = h('button', {
      type: 'button', class: 'icon-btn', 'aria-label': 'Rename board', title: 'Rename board',
      'data-testid': 'board-rename', onclick: () => this.startBoardRename(),
    }, icon('edit'));
    this.titleWrap = h('h1', { class: 'board-title' }, this.titleEl, this.renameBoardBtn);
    this.bar = h('div', { class: 'board-bar' },
      this.titleWrap,
      h('p', { class: 'hint', id: 'kbd-help' }, KEY_HELP));
    this.columnsEl = h('div', { class: 'columns', 'data-testid': 'columns' });
    this.addListEl = this.buildAddList();
    this.columnsEl.append(this.addListEl);
    this.root.replaceChildren(this.bar, this.columnsEl);

    this.columnsEl.addEventListener('keydown', (e) => this.onKeyDown(e));
    this.columnsEl.addEventListener('click', (e) => this.onClick(e));
    this.dnd = new CardDragAndDrop(this.columnsEl, {
      columnEls: this.columnEls, cardEls: this.cardEls, store: this.store, actions: this.actions,
    });
  }

  schedule() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  // ------------------------------------------------------------------ rendering

  render() {
    const view = this.store.view();
    if (view.board && !this.renamingBoard) {
      this.titleEl.textContent = view.board.name || view.board.id;
    }

    const active = document.activeElement;
    const focusedCard = active && active.matches && active.matches('[data-testid="task-card"]')
      ? active.dataset.taskId : null;

    const seenLists = new Set();
    const seenTasks = new Set();
    let prev = null;
    for (const col of view.lists) {
      const listKey = String(col.list.id);
      seenLists.add(listKey);
      let c = this.columnEls.get(listKey);
      if (!c) {
        c = this.buildColumn(col.list);
        this.columnEls.set(listKey, c);
      }
      this.updateColumn(c, col, view.lists.length);
      const want = prev ? prev.nextSibling : this.columnsEl.firstChild;
      if (want !== c.el) this.columnsEl.insertBefore(c.el, want);
      prev = c.el;

      col.tasks.forEach((task, i) => {
        const taskKey = String(task.id);
        seenTasks.add(taskKey);
        let card = this.cardEls.get(taskKey);
        if (!card) {
          card = { el: this.buildCard(task), sig: '' };
          this.cardEls.set(taskKey, card);
        }
        this.updateCard(card, task, col, i);
        const at = c.cardsEl.children[i];
        if (at !== card.el) c.cardsEl.insertBefore(card.el, at || null);
      });
      // Anything left after the last task (e.g. a card that moved away) goes.
      while (c.cardsEl.children.length > col.tasks.length) {
        c.cardsEl.children[col.tasks.length].remove();
      }
      c.cardsEl.classList.toggle('is-empty', col.tasks.length === 0);
    }
    if (this.addListEl !== this.columnsEl.lastChild) this.columnsEl.append(this.addListEl);

    for (const [id, c] of this.columnEls) {
      if (!seenLists.has(id)) {
        c.el.remove();
        this.columnEls.delete(id);
      }
    }
    for (const [id, card] of this.cardEls) {
      if (!seenTasks.has(id)) {
        card.el.remove();
        this.cardEls.delete(id);
      }
    }

    if (focusedCard && document.activeElement !== this.cardEls.get(focusedCard)?.el) {
      const card = this.cardEls.get(focusedCard);
      if (card) card.el.focus({ preventScroll: true });
    }
  }

  buildColumn(list) {
    const id = `col-${list.id}`;
    const nameEl = h('span', { class: 'column-name', 'data-testid': 'list-name', id: `${id}-name` });
    const renameBtn = h('button', {
      type: 'button', class: 'icon-btn', 'data-testid': 'list-rename', title: 'Rename list',
    }, icon('edit'));
    const deleteBtn = h('button', {
      type: 'button', class: 'icon-btn', 'data-testid': 'list-delete', title: 'Delete list',
    }, icon('trash'));
    const countEl = h('span', { class: 'column-count', 'data-testid': 'list-count' });
    const titleEl = h('h2', { class: 'column-title' }, nameEl);
    const header = h('header', { class: 'column-header' }, titleEl, countEl, renameBtn, deleteBtn);
    const cardsEl = h('ol', { class: 'cards', 'data-testid': 'list-cards', 'aria-labelledby': `${id}-name` });
    const inputId = `${id}-new-task`;
    const input = h('input', {
      id: inputId, type: 'text', class: 'input', 'data-testid': 'new-task-input',
      placeholder: 'Add a task…', autocomplete: 'off', maxlength: 200,
    });
    const label = h('label', { class: 'visually-hidden', for: inputId });
    const error = h('p', { class: 'field-error', 'data-testid': 'new-task-error', id: `${inputId}-error`, hidden: true });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-small', 'data-testid': 'new-task-submit' }, 'Add');
    const form = h('form', { class: 'new-task', 'data-testid': 'new-task-form', novalidate: true },
      label, h('div', { class: 'new-task-row' }, input, submit), error);
    const el = h('section', {
      class: 'column', 'data-testid': 'list', 'data-list-id': list.id, 'aria-labelledby': `${id}-name`,
    }, header, cardsEl, form);

    const c = { el, header, titleEl, nameEl, countEl, cardsEl, form, input, error, label, renameBtn, deleteBtn, listId: list.id };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitNewTask(c);
    });
    input.addEventListener('input', () => this.setFormError(c, null));
    renameBtn.addEventListener('click', () => this.startListRename(c));
    nameEl.addEventListener('dblclick', () => this.startListRename(c));
    deleteBtn.addEventListener('click', () => this.confirmDeleteList(c));
    return c;
  }

  updateColumn(c, col, listCount) {
    const { list, tasks } = col;
    c.name = list.name;
    if (!c.renaming) c.nameEl.textContent = list.name;
    c.countEl.textContent = String(tasks.length);
    c.countEl.setAttribute('aria-label', `${tasks.length} ${tasks.length === 1 ? 'task' : 'tasks'}`);
    c.label.textContent = `Add a task to ${list.name}`;
    c.renameBtn.setAttribute('aria-label', `Rename list ${list.name}`);
    c.deleteBtn.setAttribute('aria-label', `Delete list ${list.name}`);
    c.el.classList.toggle('is-pending', !!list._pending);
    const temp = !!list._temp;
    c.input.disabled = temp;
    c.renameBtn.disabled = temp;
    c.deleteBtn.disabled = temp || listCount <= 1;
  }

  buildCard(task) {
    const el = h('li', {
      class: 'card', 'data-testid': 'task-card', 'data-task-id': task.id, tabindex: '0',
      'aria-describedby': 'kbd-help', 'aria-keyshortcuts': 'Enter Alt+ArrowLeft Alt+ArrowRight Alt+ArrowUp Alt+ArrowDown',
    });
    el.append(
      h('p', { class: 'card-title', 'data-testid': 'task-title' }),
      h('div', { class: 'card-meta' }),
      h('p', { class: 'card-typing', 'data-testid': 'task-typing', hidden: true }),
    );
    return el;
  }

  updateCard(card, task, col, index) {
    const typing = this.collab.typingOn(task.id);
    const assigneeName = task.assignee ? this.nameOf(task.assignee) : '';
    const sig = JSON.stringify([task.title, !!task.description, task.assignee, assigneeName, !!task._pending,
      !!task._temp, typing.map((u) => u.name), col.list.name, index, col.tasks.length]);
    if (card.sig === sig) return;
    card.sig = sig;
    const { el } = card;
    const [titleEl, metaEl, typingEl] = el.children;
    el.dataset.taskId = task.id;
    el.draggable = !task._temp;
    el.classList.toggle('is-pending', !!task._pending);
    el.classList.toggle('is-temp', !!task._temp);
    el.setAttribute('aria-busy', task._pending ? 'true' : 'false');
    titleEl.textContent = task.title;

    metaEl.replaceChildren();
    if (task.description) {
      metaEl.append(h('span', { class: 'chip', title: 'Has a description', 'data-testid': 'task-has-description' },
        h('span', { 'aria-hidden': 'true' }, '≡'), h('span', { class: 'visually-hidden' }, 'Has a description')));
    }
    if (task._temp) metaEl.append(h('span', { class: 'chip chip-muted' }, 'Saving…'));
    if (task.assignee) {
      const a = avatar(task.assignee, assigneeName, { size: 'sm', label: `Assigned to ${assigneeName}` });
      a.dataset.testid = 'task-assignee';
      a.dataset.userId = task.assignee;
      metaEl.append(h('span', { class: 'spacer' }), a);
    }
    metaEl.hidden = metaEl.childElementCount === 0;

    if (typing.length) {
      const names = typing.map((u) => u.name);
      typingEl.textContent = `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…`;
      typingEl.dataset.users = typing.map((u) => u.userId).join(' ');
      typingEl.hidden = false;
    } else {
      typingEl.textContent = '';
      delete typingEl.dataset.users;
      typingEl.hidden = true;
    }

    const parts = [task.title, `in ${col.list.name}`, `${index + 1} of ${col.tasks.length}`];
    if (task.assignee) parts.push(`assigned to ${assigneeName}`);
    if (task.description) parts.push('has a description');
    if (typing.length) parts.push(typingEl.textContent);
    if (task._temp) parts.push('saving');
    el.setAttribute('aria-label', parts.join(', '));
  }

  flash(taskId) {
    const card = this.cardEls.get(String(taskId));
    if (!card) return;
    card.el.classList.remove('flash');
    void card.el.offsetWidth; // restart the animation
    card.el.classList.add('flash');
  }

  // ------------------------------------------------------------------ new tasks and lists

  setFormError(c, message) {
    c.error.textContent = message || '';
    c.error.hidden = !message;
    if (message) {
      c.input.setAttribute('aria-invalid', 'true');
      c.input.setAttribute('aria-describedby', c.error.id);
    } else {
      c.input.removeAttribute('aria-invalid');
      c.input.removeAttribute('aria-describedby');
    }
  }

  async submitNewTask(c) {
    const title = c.input.value;
    if (!title.trim()) {
      this.setFormError(c, 'Type a title first.');
      c.input.focus();
      return;
    }
    c.input.value = '';
    this.setFormError(c, null);
    const r = await this.actions.createTask(c.listId, title);
    if (!r.ok && !r.reported && r.message) {
      if (!c.input.value) c.input.value = title; // give the text back so nothing is lost
      this.setFormError(c, r.message);
      c.input.focus();
    } else if (!r.ok && r.reported && !c.input.value) {
      c.input.value = title;
    }
  }

  buildAddList() {
    const input = h('input', {
      id: 'new-list-input', type: 'text', class: 'input', 'data-testid': 'new-list-input',
      placeholder: 'Add another list…', autocomplete: 'off', maxlength: 100,
    });
    const error = h('p', { class: 'field-error', id: 'new-list-error', hidden: true });
    const form = h('form', { class: 'new-list', 'data-testid': 'new-list-form', novalidate: true },
      h('label', { for: 'new-list-input', class: 'visually-hidden' }, 'New list name'),
      h('div', { class: 'new-task-row' }, input,
        h('button', { type: 'submit', class: 'btn btn-small', 'data-testid': 'new-list-submit' }, 'Add list')),
      error);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const name = input.value;
      if (!name.trim()) {
        error.textContent = 'Type a name for the list.';
        error.hidden = false;
        return;
      }
      input.value = '';
      error.hidden = true;
      const r = await this.actions.createList(name);
      if (!r.ok) {
        if (!input.value) input.value = name;
        if (!r.reported && r.message) {
          error.textContent = r.message;
          error.hidden = false;
        }
      }
    });
    return h('section', { class: 'column column-add', 'aria-label': 'Add a list' }, form);
  }

  /** Swap a text element for an input; Enter saves, Escape cancels, leaving saves. */
  inlineEdit(hostEl, textEl, { value, label, testid, maxlength, onSave, onDone }) {
    const input = h('input', {
      type: 'text', class: 'input input-inline', value, 'aria-label': label, 'data-testid': testid, maxlength,
    });
    input.value = value;
    textEl.hidden = true;
    hostEl.insertBefore(input, textEl);
    input.focus();
    input.select();
    let finished = false;
    const finish = async (save) => {
      if (finished) return;
      finished = true;
      const next = input.value;
      input.remove();
      textEl.hidden = false;
      onDone();
      if (save && next.trim() && next.trim() !== value) {
        const r = await onSave(next);
        if (r && !r.ok && r.message && !r.reported) {
          toast(r.message, { kind: 'error' });
        }
      }
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); finish(true); }
      else if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); finish(false); }
    });
    input.addEventListener('blur', () => finish(true));
  }

  startListRename(c) {
    if (c.renaming) return;
    c.renaming = true;
    this.inlineEdit(c.titleEl, c.nameEl, {
      value: c.name || '',
      label: 'List name',
      testid: 'list-rename-input',
      maxlength: 100,
      onSave: (name) => this.actions.renameList(c.listId, name),
      onDone: () => {
        c.renaming = false;
        c.renameBtn.focus();
        this.schedule();
      },
    });
  }

  confirmDeleteList(c) {
    const col = this.store.view().lists.find((x) => x.list.id === c.listId);
    if (!col) return;
    const n = col.tasks.length;
    const question = n
      ? `Delete the list “${col.list.name}” and its ${n} ${n === 1 ? 'task' : 'tasks'}?`
      : `Delete the list “${col.list.name}”?`;
    if (!window.confirm(question)) return;
    this.actions.deleteList(c.listId, n > 0);
  }

  startBoardRename() {
    if (this.renamingBoard) return;
    this.renamingBoard = true;
    this.renameBoardBtn.hidden = true;
    this.inlineEdit(this.titleWrap, this.titleEl, {
      value: this.titleEl.textContent,
      label: 'Board name',
      testid: 'board-rename-input',
      maxlength: 100,
      onSave: (name) => this.actions.renameBoard(name),
      onDone: () => {
        this.renamingBoard = false;
        this.renameBoardBtn.hidden = false;
        this.renameBoardBtn.focus();
        this.schedule();
      },
    });
  }

  // ------------------------------------------------------------------ cards: click and keyboard

  onClick(e) {
    const card = closestCard(e.target);
    if (!card) return;
    this.editor.open(this.store.resolveTaskId(card.dataset.taskId));
  }

  onKeyDown(e) {
    const card = closestCard(e.target);
    if (!card || e.target !== card) return;
    const taskId = this.store.resolveTaskId(card.dataset.taskId);
    const view = this.store.view();
    const ci = view.lists.findIndex((c) => c.tasks.some((t) => t.id === taskId));
    if (ci < 0) return;
    const col = view.lists[ci];
    const ti = col.tasks.findIndex((t) => t.id === taskId);

    if ((e.key === 'Enter' || e.key === ' ') && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      this.editor.open(taskId);
      return;
    }
    const arrows = ['ArrowUp', 'ArrowDown', 'ArrowLeft', 'ArrowRight'];
    if (!arrows.includes(e.key) || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();

    if (e.altKey) {
      const task = col.tasks[ti];
      if (task._temp) {
        announce('This task is still being saved.');
        return;
      }
      let target = null;
      if (e.key === 'ArrowUp' && ti > 0) target = { ci, index: ti - 1 };
      if (e.key === 'ArrowDown' && ti < col.tasks.length - 1) target = { ci, index: ti + 1 };
      if (e.key === 'ArrowLeft' && ci > 0) target = { ci: ci - 1, index: Math.min(ti, view.lists[ci - 1].tasks.length) };
      if (e.key === 'ArrowRight' && ci < view.lists.length - 1) target = { ci: ci + 1, index: Math.min(ti, view.lists[ci + 1].tasks.length) };
      if (!target || view.lists[target.ci].list._temp) {
        announce('It cannot move further that way.');
        return;
      }
      const dst = view.lists[target.ci];
      this.actions.moveTask(taskId, dst.list.id, target.index);
      const total = target.ci === ci ? col.tasks.length : dst.tasks.length + 1;
      announce(`Moved “${task.title}” to ${dst.list.name}, position ${target.index + 1} of ${total}.`);
      // Keep the focus on the moved card once it has been re-rendered in its new place.
      queueMicrotask(() => queueMicrotask(() => this.cardEls.get(String(taskId))?.el.focus()));
      return;
    }

    // Plain arrows move the focus between cards.
    let next = null;
    if (e.key === 'ArrowUp') next = col.tasks[ti - 1];
    if (e.key === 'ArrowDown') next = col.tasks[ti + 1];
    if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      const step = e.key === 'ArrowLeft' ? -1 : 1;
      for (let k = ci + step; k >= 0 && k < view.lists.length; k += step) {
        const other = view.lists[k].tasks;
        if (other.length) {
          next = other[Math.min(ti, other.length - 1)];
          break;
        }
      }
    }
    if (next) this.cardEls.get(String(next.id))?.el.focus();
  }
}
