// A page that only says something (board not found, no access, sign in) and offers a way on.

import { clearBoardStatus } from './header.js';
import { h } from './ui.js';

export function messagePage(root, title, text, actions = []) {
  root.replaceChildren(h('section', { class: 'message-page' },
    h('h1', {}, title),
    ...[].concat(text).map((t) => h('p', {}, t)),
    h('div', { class: 'message-actions' }, ...actions)));
  const heading = root.querySelector('h1');
  heading.tabIndex = -1;
  heading.focus();
}

export function signInPage(root) {
  clearBoardStatus();
  document.title = 'Sign in · RT Board';
  messagePage(root, 'Sign in to RT Board', [
    'Your browser asks for a user name and password when you sign in.',
    'Demo accounts: alice, bob and carol; each password is the user name.',
  ], [h('button', { type: 'button', class: 'btn btn-primary', onclick: () => window.location.reload() }, 'Sign in')]);
}
