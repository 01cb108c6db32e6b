// Page addresses: the board list is the app's own URL without ?board=, a board is ?board=ID
// (or the older #/boards/ID). Other query parameters, such as ?transport=, are kept.

export function currentBoardId() {
  const q = new URLSearchParams(window.location.search).get('board');
  if (q) return q;
  const m = window.location.hash.match(/^#\/boards\/([^/?#]+)/);
  return m ? decodeURIComponent(m[1]) : null;
}

export function boardHref(id) {
  const p = new URLSearchParams(window.location.search);
  p.set('board', id);
  return `${window.location.pathname}?${p}`;
}

export function homeHref() {
  const p = new URLSearchParams(window.location.search);
  p.delete('board');
  const qs = p.toString();
  return `${window.location.pathname}${qs ? `?${qs}` : ''}`;
}
