// A readable, collapsible JSON tree built from text nodes (<details> per object/array).

import { h } from '../dom.js';

const OPEN_DEPTH = 2;
const MAX_CHILDREN = 500;

/**
 * The tree with its tools: Expand all, Collapse all, and Raw (the JSON as indented text). Its
 * height is capped; it scrolls.
 */
export function jsonView(value, { label } = {}) {
  const tree = node(value, 0);
  const raw = h('pre', { class: 'json-raw', hidden: true }, JSON.stringify(value, null, 2));
  const view = h('div', { class: 'json-view mono', 'aria-label': label || null, dataset: { testid: 'json' } }, tree, raw);
  const toggleRaw = h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'aria-pressed': 'false', onclick: () => {
    const on = raw.hidden;
    raw.hidden = !on;
    tree.hidden = on;
    toggleRaw.setAttribute('aria-pressed', on ? 'true' : 'false');
  } }, 'Raw');
  const expand = h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => setAllOpen(tree, true) }, 'Expand all');
  const collapse = h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => setAllOpen(tree, false) }, 'Collapse all');
  const tools = typeof value === 'object' && value !== null
    ? h('div', { class: 'json-tools', role: 'group', 'aria-label': `${label || 'JSON'} view` }, expand, collapse, toggleRaw)
    : null;
  return h('div', { class: 'json-block' }, tools, view);
}

/** Opens (building as it goes) or closes every node of a tree. */
function setAllOpen(root, open) {
  const nodes = root.matches && root.matches('details') ? [root] : [];
  nodes.push(...root.querySelectorAll('details'));
  if (!open) {
    for (const details of nodes) details.open = false;
    return;
  }
  const done = new Set();
  let pending = nodes;
  while (pending.length) {
    for (const details of pending) {
      if (details.build) details.build();
      details.open = true;
      done.add(details);
    }
    pending = [...root.querySelectorAll('details')].filter((details) => !done.has(details));
  }
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
  details.build = build;
  if (details.open) build();
  details.addEventListener('toggle', () => {
    if (details.open) build();
  });
  details.append(summary, list, h('span', { class: 'json-punct json-close' }, close));
  return details;
}
