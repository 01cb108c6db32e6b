// The board list page: every board the user may open, and a form to create one.

import { api, randomId } from './api.js';
import { clearBoardStatus } from './header.js';
import { signInPage } from './message-page.js';
import { boardHref } from './routes.js';
import { h, toast } from './ui.js';

const BOARD_ID_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function slugify(s) {
  return String(s || '').toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9_-]+/g, '-').replace(/^[-_]+|-+$/g, '').slice(0, 64);
}

export class HomePage {
  /** root: the element the page fills; navigate(href): go to another page. */
  constructor({ root, navigate }) {
    this.root = root;
    this.navigate = navigate;
  }

  start() {
    clearBoardStatus();
    document.title = 'Boards · RT Board';
    this.alive = true;
    this.listEl = h('ul', { class: 'board-grid', 'data-testid': 'board-list', 'aria-busy': 'true' },
      h('li', { class: 'board-tile skeleton' }), h('li', { class: 'board-tile skeleton' }));
    this.root.replaceChildren(h('div', { class: 'home' },
      h('section', { class: 'home-boards', 'aria-labelledby': 'boards-heading' },
        h('h1', { id: 'boards-heading' }, 'Boards'),
        this.listEl),
      this.buildForm()));
    this.load();
  }

  destroy() {
    this.alive = false;
  }

  buildForm() {
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
    return form;
  }

  async load() {
    try {
      // the list comes a page at a time; follow "next" for up to ten pages
      const boards = [];
      let after = null;
      for (let page = 0; page < 10; page++) {
        const r = await api.listBoards(after);
        if (!this.alive) return;
        if (Array.isArray(r.data)) boards.push(...r.data);
        after = r.next;
        if (!after) break;
      }
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
      if (e.status === 401) return signInPage(this.root);
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
      this.navigate(boardHref(board.id || slug));
    } catch (e) {
      if (e.status === 409) {
        fail(`A board with the address “${slug}” exists already. Choose another address, or open it from the list.`, idInput);
      } else if (e.status === 422 || e.status === 400) {
        fail(e.message, e.field === 'id' ? idInput : nameInput);
      } else if (e.status === 401) {
        signInPage(this.root);
      } else {
        fail(`Could not create the board: ${e.message}`, null);
      }
    } finally {
      btn.disabled = false;
    }
  }
}
