// A tiny DOM builder. Text only ever goes in through text nodes, so job-derived strings
// (types, inputs, logs, errors) can never become markup. No innerHTML anywhere in the app: the
// page runs under Trusted Types (`require-trusted-types-for 'script'; trusted-types 'none'`),
// so no HTML or script sink may be used at all (innerHTML, outerHTML, insertAdjacentHTML,
// document.write, a <script>'s text or src, `on…` attributes given as strings).

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * h('button', {class: 'btn', onclick: fn, dataset: {jobId: '4'}}, 'Retry')
 * - `class` / `className`: class names; `dataset`: data-* attributes;
 * - `on<event>`: listeners; `style` is refused (CSP: style-src 'self' only allows the CSSOM,
 *   use `el.style.prop = …` from code);
 * - booleans set/remove the attribute; null/undefined/false skip it;
 * - children: strings/numbers (become text nodes), nodes, arrays, null (skipped).
 */
export function h(tag, attrs, ...children) {
  if (/^(script|iframe|object|embed)$/i.test(tag)) throw new Error(`h(): no <${tag}> in this page`);
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

/** Same as h() for SVG elements (the queue sparklines). */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

function applyAttrs(el, attrs) {
  if (!attrs) return;
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'style') throw new Error('h(): use the CSSOM (el.style.x = …), not a style attribute');
    if (name === 'class' || name === 'className') {
      if (el instanceof SVGElement) el.setAttribute('class', value);
      else el.className = value;
    } else if (name === 'dataset') {
      for (const [key, v] of Object.entries(value)) if (v !== null && v !== undefined) el.dataset[key] = String(v);
    } else if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (isHandlerAttribute(el, name)) {
      throw new Error(`h(): ${name} must be a function (an event handler attribute is a script sink)`);
    } else if (name === 'value' && 'value' in el && !(el instanceof SVGElement)) {
      el.value = value;
    } else if (name === 'checked' || name === 'selected' || name === 'disabled' || name === 'hidden') {
      el[name] = Boolean(value);
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
}

/** `onclick`, `onerror`…: an event handler content attribute (its IDL property starts null). */
function isHandlerAttribute(el, name) {
  return /^on/i.test(name) && el[name.toLowerCase()] === null;
}

export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces all children of `el` (text children become text nodes). */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Sets textContent only when it differs, so unchanged cells cost no layout. */
export function setText(el, text) {
  const value = text === null || text === undefined ? '' : String(text);
  if (el.textContent !== value) el.textContent = value;
}

/** Sets or removes an attribute only when it changes. */
export function setAttr(el, name, value) {
  if (isHandlerAttribute(el, name)) throw new Error(`setAttr(): ${name} is a script sink; use addEventListener`);
  if (value === null || value === undefined || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else {
    const text = value === true ? '' : String(value);
    if (el.getAttribute(name) !== text) el.setAttribute(name, text);
  }
}

let nextId = 0;
/** A document-unique id for label/for pairs. */
export function uid(prefix = 'id') {
  nextId += 1;
  return `${prefix}-${nextId}`;
}
