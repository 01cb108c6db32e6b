// Small DOM helpers: element builder, toasts, screen-reader announcements, avatars.

/**
 * h('button', {class: 'btn', type: 'button', onclick: fn, 'data-testid': 'x'}, 'Label')
 * Attributes starting with "on" and holding a function become listeners; true/false toggle
 * boolean attributes; null/undefined are skipped. Children may be strings, nodes or arrays.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// ---- toasts ----

/**
 * Show a short message. kind: 'info' | 'success' | 'error' | 'warning'.
 * action: {label, run} adds a button. Errors stay longer and are announced assertively.
 */
export function toast(message, { kind = 'info', action = null, timeout } = {}) {
  const host = document.getElementById('toasts');
  if (!host) return null;
  const ms = timeout ?? (kind === 'error' || kind === 'warning' ? 9000 : 5000);
  const el = h('div', {
    class: `toast toast-${kind}`,
    role: kind === 'error' || kind === 'warning' ? 'alert' : 'status',
    'data-testid': 'toast',
    'data-kind': kind,
  }, h('p', { class: 'toast-text' }, message));
  const close = () => {
    clearTimeout(timer);
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 200);
  };
  if (action) {
    el.append(h('button', {
      type: 'button',
      class: 'btn btn-small toast-action',
      onclick: () => { close(); action.run(); },
    }, action.label));
  }
  el.append(h('button', {
    type: 'button', class: 'icon-btn toast-close', 'aria-label': 'Dismiss message', onclick: close,
  }, '×'));
  host.append(el);
  while (host.children.length > 4) host.firstElementChild.remove();
  let timer = setTimeout(close, ms);
  el.addEventListener('mouseenter', () => clearTimeout(timer));
  el.addEventListener('mouseleave', () => { timer = setTimeout(close, 3000); });
  el.addEventListener('focusin', () => clearTimeout(timer));
  return el;
}

// ---- live region ----

let announceTimer = null;
const announceQueue = [];

/** Say something to screen readers through the polite live region (batched). */
export function announce(text) {
  if (!text) return;
  announceQueue.push(text);
  if (announceTimer) return;
  announceTimer = setTimeout(() => {
    announceTimer = null;
    const region = document.getElementById('announcer');
    if (!region) return;
    const msg = announceQueue.splice(0).slice(-3).join('. ');
    region.textContent = '';
    // A fresh text node after clearing makes screen readers read repeated messages too.
    requestAnimationFrame(() => { region.textContent = msg; });
  }, 250);
}

// ---- avatars ----

const PALETTE = ['#1d4ed8', '#047857', '#b91c1c', '#6d28d9', '#9a3412', '#0e7490', '#be185d', '#4d7c0f', '#374151'];

export function colorFor(id) {
  let x = 0;
  for (const ch of String(id)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[x % PALETTE.length];
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/[\s._-]+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : (parts[0] || '?').slice(0, 1);
  return letters.toUpperCase();
}

const ICONS = {
  edit: '<path d="M4 20h4L18.5 9.5a2.12 2.12 0 0 0-4-4L4 16v4z"/><path d="M13.5 6.5l4 4"/>',
  trash: '<path d="M4 7h16"/><path d="M10 11v6M14 11v6"/><path d="M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12"/><path d="M9 7V4h6v3"/>',
  close: '<path d="M6 6l12 12M18 6L6 18"/>',
};

/** An inline stroke icon (decorative: the button around it carries the label). */
export function icon(name) {
  const span = document.createElement('span');
  span.className = 'icon';
  span.setAttribute('aria-hidden', 'true');
  span.innerHTML = `<svg viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${ICONS[name] || ''}</svg>`;
  return span;
}

export function avatar(userId, name, { size = 'md', label } = {}) {
  const display = name || userId;
  const el = h('span', {
    class: `avatar avatar-${size}`,
    title: label || display,
  }, h('span', { 'aria-hidden': 'true' }, initials(display)));
  el.style.setProperty('--avatar-bg', colorFor(userId)); // CSSOM: allowed under a strict CSP
  el.append(h('span', { class: 'visually-hidden' }, label || display));
  return el;
}

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** The task card an event target lies in, or null. */
export function closestCard(target) {
  return target && target.closest ? target.closest('[data-testid="task-card"]') : null;
}
