// Start-up and routing: the board list at the app's own address, a board at ?board=ID (or
// #/boards/ID). One page is shown at a time; a new address destroys it and starts the next.

import { setupHeader } from './header.js';
import { HomePage } from './home-page.js';
import { BoardPage } from './board-page.js';
import { currentBoardId, homeHref } from './routes.js';

const root = document.getElementById('main');
let page = null;

function navigate(href) {
  window.history.pushState(null, '', href);
  route();
}

function route() {
  if (page) page.destroy();
  const boardId = currentBoardId();
  document.getElementById('home-link').setAttribute('href', homeHref());
  const ctx = { root, navigate, reload: route };
  page = boardId ? new BoardPage(boardId, ctx) : new HomePage(ctx);
  page.key = boardId || '';
  page.start();
}

// History navigation fires popstate and, for a hash change, hashchange too: route once.
function routeIfChanged() {
  if (page && page.key === (currentBoardId() || '')) return;
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

setupHeader({
  onMeChange: () => { if (page && page.onMe) page.onMe(); },
  onBadge: () => { if (page && page.onBadge) page.onBadge(); },
});
route();
