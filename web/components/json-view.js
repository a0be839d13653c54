// A readable, collapsible JSON tree built from text nodes (<details> per object/array).

import { h } from '../dom.js';

const OPEN_DEPTH = 2;
const MAX_CHILDREN = 500;

export function jsonView(value, { label } = {}) {
  return h('div', { class: 'json-view mono', 'aria-label': label || null }, node(value, 0));
}

/** A "Copy" button that puts the pretty-printed JSON on the clipboard. */
export function copyJsonButton(getValue) {
  const button = h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: async () => {
    try {
      await navigator.clipboard.writeText(JSON.stringify(getValue(), null, 2));
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Copy failed';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  } }, 'Copy');
  return button;
}

function node(value, depth) {
  if (value === null) return h('span', { class: 'json-null' }, 'null');
  if (Array.isArray(value)) return container(value, depth, '[', ']', value.map((v, i) => [String(i), v]), true);
  switch (typeof value) {
    case 'object':
      return container(value, depth, '{', '}', Object.entries(value), false);
    case 'string':
      return h('span', { class: 'json-string' }, JSON.stringify(value));
    case 'number':
      return h('span', { class: 'json-number' }, String(value));
    case 'boolean':
      return h('span', { class: 'json-boolean' }, String(value));
    default:
      return h('span', null, String(value));
  }
}

function container(value, depth, open, close, entries, isArray) {
  if (!entries.length) return h('span', { class: 'json-punct' }, `${open}${close}`);
  const count = isArray ? `${entries.length} item${entries.length === 1 ? '' : 's'}` : `${entries.length} key${entries.length === 1 ? '' : 's'}`;
  const details = h('details', { class: 'json-node' });
  details.open = depth < OPEN_DEPTH;
  // The collapsed "{ 3 keys }" is drawn by CSS from data-count, so the text of the tree stays
  // the JSON itself.
  const summary = h('summary', { dataset: { count: ` ${count} ${close}` }, 'aria-label': `${isArray ? 'array' : 'object'}, ${count}` }, h('span', { class: 'json-punct' }, open));
  const list = h('ul', { class: 'json-list' });
  // Children are built when first opened, so a huge output costs nothing until looked at.
  let built = false;
  function build() {
    if (built) return;
    built = true;
    const shown = entries.slice(0, MAX_CHILDREN);
    shown.forEach(([key, child], index) => {
      const comma = index < entries.length - 1 ? h('span', { class: 'json-punct' }, ',') : null;
      list.appendChild(h('li', null, isArray ? null : h('span', { class: 'json-key' }, JSON.stringify(key)), isArray ? null : h('span', { class: 'json-punct' }, ': '), node(child, depth + 1), comma));
    });
    if (entries.length > MAX_CHILDREN) list.appendChild(h('li', { class: 'muted' }, `… ${entries.length - MAX_CHILDREN} more (use Copy to get everything)`));
  }
  if (details.open) build();
  details.addEventListener('toggle', () => {
    if (details.open) build();
  });
  details.append(summary, list, h('span', { class: 'json-punct json-close' }, close));
  return details;
}
