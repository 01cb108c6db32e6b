// The top bar: who is signed in (and its menu), who else is on the board, and the connection
// badge. `session` holds the signed-in user as the server last named it.

import { onUserHeader, onUnauthorized } from './api.js';
import { forcedTransport, TRANSPORT_LABELS } from './transport.js';
import { h, toast, avatar } from './ui.js';

export const session = { me: null, meName: null };

const $ = (id) => document.getElementById(id);
let meChanged = () => {};

// ------------------------------------------------------------------ user

export function setMe(user) {
  const userId = typeof user === 'object' && user ? (user.userId ?? user.id) : user;
  const name = typeof user === 'object' && user ? user.name : null;
  if (!userId) return;
  const changed = session.me !== String(userId) || (name && name !== session.meName);
  session.me = String(userId);
  session.meName = name || session.meName || session.me;
  if (!changed) return;
  const btnName = $('current-user');
  btnName.textContent = session.meName;
  btnName.dataset.userId = session.me;
  $('user-avatar').replaceChildren(avatar(session.me, session.meName, { size: 'sm', label: `Signed in as ${session.meName}` }));
  $('user-popover-name').textContent = session.meName === session.me ? session.me : `${session.meName} (${session.me})`;
  meChanged();
}

function setupUserMenu() {
  const btn = $('user-button');
  const pop = $('user-popover');
  const setOpen = (open) => {
    pop.hidden = !open;
    btn.setAttribute('aria-expanded', String(open));
  };
  btn.addEventListener('click', () => setOpen(pop.hidden));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !pop.hidden) {
      setOpen(false);
      btn.focus();
    }
  });
  document.addEventListener('click', (e) => {
    if (!pop.hidden && !pop.contains(e.target) && !btn.contains(e.target)) setOpen(false);
  });
}

function setupSignInWatch() {
  let shown = false;
  onUnauthorized(() => {
    if (shown || !session.me) return;
    shown = true;
    toast('The server no longer accepts your sign-in. Reload the page to sign in again.', {
      kind: 'error', timeout: 30000, action: { label: 'Reload', run: () => window.location.reload() },
    });
  });
}

// ------------------------------------------------------------------ connection badge

const STATE_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  stopped: 'Disconnected',
};

export function setBadge(transport, state) {
  const badge = $('conn-badge');
  badge.hidden = false;
  badge.dataset.transport = transport;
  badge.dataset.state = state;
  const label = TRANSPORT_LABELS[transport] || transport;
  badge.querySelector('.conn-transport').textContent = label;
  badge.querySelector('.conn-state').textContent = STATE_TEXT[state] || state;
  const pinned = forcedTransport() ? ' (chosen by the page address)' : '';
  const tip = state === 'live'
    ? `Live updates over ${label}${pinned}.`
    : `${STATE_TEXT[state] || state} (${label}${pinned}). Activate to try again now.`;
  badge.title = tip;
  badge.setAttribute('aria-label', `Connection: ${label}, ${STATE_TEXT[state] || state}`);
}

export function hideBadge() {
  const badge = $('conn-badge');
  badge.hidden = true;
  badge.dataset.transport = '';
  badge.dataset.state = 'idle';
}

// ------------------------------------------------------------------ presence

const PRESENCE_AVATARS = 5; // avatars shown; the others are a "+N"

/** users: the first page (the local user first); total: everyone on the board. */
export function renderPresence(users, enabled, total = users.length) {
  const el = $('presence');
  const shown = users.slice(0, PRESENCE_AVATARS);
  const more = Math.max(0, total - shown.length);
  el.hidden = users.length === 0;
  el.dataset.enabled = String(enabled);
  el.dataset.count = String(total);
  el.title = enabled ? '' : 'Who else is here is shown on WebSocket connections only.';
  el.setAttribute('aria-label', `${total} ${total === 1 ? 'person' : 'people'} viewing this board`);
  const want = shown.map((u) => u.userId).join('\n') + `\n+${more}`;
  if (el.dataset.users === want && el.dataset.names === shown.map((u) => u.name).join('\n')) return;
  el.dataset.users = want;
  el.dataset.names = shown.map((u) => u.name).join('\n');
  const items = shown.map((u) => {
    const you = u.userId === session.me;
    return h('li', { 'data-user-id': u.userId, 'data-testid': 'presence-user', class: you ? 'is-me' : '' },
      avatar(u.userId, u.name, { size: 'md', label: you ? `${u.name} (you)` : u.name }));
  });
  if (more > 0) {
    items.push(h('li', { class: 'presence-more', 'data-testid': 'presence-more', title: `${more} more` },
      `+${more > 999 ? `${Math.floor(more / 1000)}k` : more}`));
  }
  el.replaceChildren(...items);
}

/** A page that is not a board: no badge, nobody present. */
export function clearBoardStatus() {
  hideBadge();
  renderPresence([], false);
}

// ------------------------------------------------------------------ start

/** onMeChange(): the signed-in user changed; onBadge(): the badge was activated. */
export function setupHeader({ onMeChange, onBadge }) {
  meChanged = onMeChange;
  onUserHeader((u) => setMe(u));
  setupSignInWatch();
  setupUserMenu();
  $('conn-badge').addEventListener('click', () => onBadge());
}
