// Dragging a task card to another place, in its own list or another one. While a card is
// dragged, a marker shows where it would land and the column under the pointer is highlighted;
// dropping it moves the task there.

import { h, announce, closestCard } from './ui.js';

export class CardDragAndDrop {
  /**
   * container: the element holding the columns; columnEls and cardEls: the view's maps of
   * rendered columns (listId -> {el, cardsEl, listId}) and cards (taskId -> {el});
   * store and actions: the board's state and the operations on it.
   */
  constructor(container, { columnEls, cardEls, store, actions }) {
    this.container = container;
    this.columnEls = columnEls;
    this.cardEls = cardEls;
    this.store = store;
    this.actions = actions;
    this.drag = null;
    this.marker = h('li', { class: 'drop-marker', 'aria-hidden': 'true' });

    container.addEventListener('dragstart', (e) => this.onDragStart(e));
    container.addEventListener('dragover', (e) => this.onDragOver(e));
    container.addEventListener('drop', (e) => this.onDrop(e));
    container.addEventListener('dragend', () => this.end());
    container.addEventListener('dragleave', (e) => {
      if (this.drag && (!e.relatedTarget || !container.contains(e.relatedTarget))) this.hideMarker();
    });
  }

  onDragStart(e) {
    const card = closestCard(e.target);
    if (!card || card.classList.contains('is-temp')) {
      if (card) e.preventDefault();
      return;
    }
    this.drag = { taskId: card.dataset.taskId, target: null };
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('application/x-rtboard-task', card.dataset.taskId);
    e.dataTransfer.setData('text/plain', card.querySelector('.card-title')?.textContent || '');
    requestAnimationFrame(() => card.classList.add('is-dragging'));
  }

  /** The column under the pointer and the index the card would get there, or null. */
  targetAt(e) {
    const colEl = e.target.closest ? e.target.closest('[data-testid="list"]') : null;
    if (!colEl) return null;
    const c = this.columnEls.get(colEl.dataset.listId);
    if (!c || c.el.classList.contains('is-pending')) return null;
    const cards = [...c.cardsEl.querySelectorAll('[data-testid="task-card"]')]
      .filter((el) => el.dataset.taskId !== this.drag.taskId);
    let index = 0;
    for (const el of cards) {
      const r = el.getBoundingClientRect();
      if (e.clientY > r.top + r.height / 2) index += 1;
      else break;
    }
    return { c, index, before: cards[index] || null };
  }

  onDragOver(e) {
    if (!this.drag) return;
    const t = this.targetAt(e);
    if (!t) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'move';
    this.drag.target = { listId: t.c.listId, index: t.index };
    if (t.before) t.c.cardsEl.insertBefore(this.marker, t.before);
    else t.c.cardsEl.append(this.marker);
    for (const [, col] of this.columnEls) col.el.classList.toggle('is-drop-target', col === t.c);
  }

  onDrop(e) {
    if (!this.drag) return;
    e.preventDefault();
    const t = this.targetAt(e);
    const target = t ? { listId: t.c.listId, index: t.index } : this.drag.target;
    const taskId = this.store.resolveTaskId(this.drag.taskId);
    this.end();
    if (!target) return;
    const before = this.store.viewTask(taskId);
    const col = this.store.view().lists.find((c) => c.list.id === target.listId);
    if (before && col) {
      const from = col.tasks.findIndex((x) => x.id === taskId);
      if (from === target.index && before.listId === target.listId) return;
      this.actions.moveTask(taskId, target.listId, target.index);
      announce(`Moved “${before.title}” to ${col.list.name}.`);
    }
  }

  hideMarker() {
    this.marker.remove();
    for (const [, col] of this.columnEls) col.el.classList.remove('is-drop-target');
  }

  end() {
    this.hideMarker();
    if (this.drag) {
      this.cardEls.get(this.drag.taskId)?.el.classList.remove('is-dragging');
    }
    this.drag = null;
  }
}
