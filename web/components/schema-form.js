// A form generated from a JSON Schema. Each node owns its inputs (local DOM state), returns its
// value on demand, checks itself (required, type, min/max, lengths, pattern, enum) and shows
// errors by JSON Pointer, so client checks and the server's 422 `details` land on the same field.
// Parts it cannot render (oneOf, $ref, maps, …) become a raw JSON textarea for that part.

import { h, setText, uid } from '../dom.js';

/**
 * buildSchemaForm(schema) → { el, getValue(), setValue(v), validate() → [{path, message}],
 *   showErrors([{path, message}]) → the errors no field took, clearErrors() }
 */
export function buildSchemaForm(schema) {
  const registry = new Map(); // pointer -> node
  const root = buildNode(schema ?? {}, { path: '', name: 'input', required: true, registry, root: true });
  if (schema && schema.default !== undefined) root.set(schema.default);
  return {
    el: root.el,
    getValue() {
      const value = root.get();
      return value === undefined ? defaultEmpty(schema) : value;
    },
    setValue(value) {
      root.set(value);
    },
    validate() {
      const errors = [];
      root.validate(errors, true);
      return errors;
    },
    showErrors(errors) {
      const unmapped = [];
      for (const error of errors) {
        const node = nearest(registry, error.path);
        if (node && node.showError) node.showError(error.message);
        else unmapped.push(error);
      }
      return unmapped;
    },
    clearErrors() {
      for (const node of registry.values()) node.clearError && node.clearError();
    },
  };
}

function defaultEmpty(schema) {
  const type = primaryType(schema || {});
  if (type === 'object') return {};
  if (type === 'array') return [];
  return null;
}

/** The node for a pointer, or its nearest ancestor (not the form's root object). */
function nearest(registry, path) {
  let pointer = typeof path === 'string' ? path : '';
  while (true) {
    const node = registry.get(pointer);
    if (node && node.showError) return node;
    if (pointer === '') return null;
    pointer = pointer.slice(0, pointer.lastIndexOf('/'));
  }
}

const escapePointer = (key) => String(key).replaceAll('~', '~0').replaceAll('/', '~1');

function primaryType(schema) {
  if (schema === true || schema === null || typeof schema !== 'object') return null;
  let type = schema.type;
  if (Array.isArray(type)) {
    const nonNull = type.filter((t) => t !== 'null');
    type = nonNull.length === 1 ? nonNull[0] : null;
  }
  if (!type && schema.properties) type = 'object';
  if (!type && schema.items) type = 'array';
  return type || null;
}

function unsupported(schema) {
  if (schema === true || schema === false || typeof schema !== 'object' || schema === null) return true;
  if (schema.oneOf || schema.anyOf || schema.allOf || schema.$ref || schema.not || schema.if) return true;
  if (Array.isArray(schema.enum) || 'const' in schema) return false;
  const type = primaryType(schema);
  if (!type) return true;
  if (type === 'object' && !schema.properties) return true;
  if (type === 'array' && (!schema.items || Array.isArray(schema.items) || typeof schema.items !== 'object')) return true;
  return false;
}

function buildNode(schema, ctx) {
  if (unsupported(schema)) return rawNode(schema, ctx);
  if (Array.isArray(schema.enum)) return enumNode(schema, ctx);
  if ('const' in schema) return constNode(schema, ctx);
  switch (primaryType(schema)) {
    case 'object':
      return objectNode(schema, ctx);
    case 'array':
      return arrayNode(schema, ctx);
    case 'string':
      return stringNode(schema, ctx);
    case 'number':
    case 'integer':
      return numberNode(schema, ctx);
    case 'boolean':
      return booleanNode(schema, ctx);
    default:
      return rawNode(schema, ctx);
  }
}

/**
 * What a field is called: its schema's `title`, else the name its place gives it (the
 * property's key, or "tags 2" for the second item of `tags`).
 */
function labelOf(schema, ctx) {
  const title = schema && typeof schema === 'object' && typeof schema.title === 'string' ? schema.title.trim() : '';
  return title || ctx.label || ctx.name;
}

/** The wrapper every leaf uses: label, control, hint, error slot. */
function fieldShell(schema, ctx, control, { inlineLabel = false } = {}) {
  const id = control.id || uid('f');
  control.id = id;
  const label = h('label', { for: id, class: 'field-label' }, labelOf(schema, ctx));
  const marker = ctx.required && !ctx.root ? h('span', { class: 'required', 'aria-hidden': 'true', title: 'required' }, '*') : null;
  if (ctx.required && !ctx.root && control.setAttribute) control.setAttribute('aria-required', 'true');
  const hintText = [schema && schema.description, constraintsHint(schema)].filter(Boolean).join(' · ');
  const hint = hintText ? h('p', { class: 'hint', id: `${id}-hint` }, hintText) : null;
  if (hint) control.setAttribute('aria-describedby', hint.id);
  const head = inlineLabel
    ? h('div', { class: 'field-check' }, control, label, marker)
    : h('div', { class: 'field-head' }, label, marker);
  const wrapper = h('div', { class: 'field', dataset: { path: ctx.path } }, head, inlineLabel ? null : control, hint);
  let errorEl = null;
  return {
    wrapper,
    showError(message) {
      if (!errorEl) {
        errorEl = h('p', { class: 'field-error', role: 'alert', id: `${id}-error` });
        wrapper.appendChild(errorEl);
      }
      const text = errorEl.textContent ? `${errorEl.textContent}; ${message}` : message;
      setText(errorEl, text);
      wrapper.classList.add('has-error');
      control.setAttribute('aria-invalid', 'true');
    },
    clearError() {
      if (errorEl) errorEl.remove();
      errorEl = null;
      wrapper.classList.remove('has-error');
      control.removeAttribute('aria-invalid');
    },
  };
}

function constraintsHint(schema) {
  if (!schema || typeof schema !== 'object') return '';
  const parts = [];
  if (schema.minLength === 1) parts.push('not empty');
  else if (schema.minLength !== undefined) parts.push(`at least ${schema.minLength} characters`);
  if (schema.maxLength !== undefined) parts.push(`at most ${schema.maxLength} characters`);
  if (schema.minimum !== undefined) parts.push(`≥ ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined) parts.push(`> ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined) parts.push(`≤ ${schema.maximum}`);
  if (schema.exclusiveMaximum !== undefined) parts.push(`< ${schema.exclusiveMaximum}`);
  if (schema.pattern) parts.push(`pattern ${schema.pattern}`);
  if (schema.format) parts.push(schema.format);
  return parts.join(', ');
}

function register(ctx, node) {
  ctx.registry.set(ctx.path, node);
  return node;
}

function objectNode(schema, ctx) {
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  const children = [];
  const body = h('div', { class: 'fieldset-body' });
  for (const [key, childSchema] of Object.entries(schema.properties || {})) {
    const child = buildNode(childSchema, {
      path: `${ctx.path}/${escapePointer(key)}`,
      name: key,
      required: required.has(key),
      registry: ctx.registry,
    });
    if (childSchema && typeof childSchema === 'object' && childSchema.default !== undefined) child.set(childSchema.default);
    children.push({ key, node: child });
    body.appendChild(child.el);
  }
  // Required keys without a declared property: nothing to render, the server will say so.
  let el;
  let errorSlot;
  if (ctx.root) {
    errorSlot = h('div', { class: 'object-errors' });
    el = h('div', { class: 'schema-root' }, errorSlot, body);
    if (!children.length) body.appendChild(h('p', { class: 'muted' }, 'This type takes an object with no declared properties.'));
  } else {
    errorSlot = h('div', { class: 'object-errors' });
    el = h('fieldset', { class: 'fieldset field', dataset: { path: ctx.path } },
      h('legend', null, labelOf(schema, ctx), ctx.required ? h('span', { class: 'required', 'aria-hidden': 'true' }, ' *') : null),
      schema.description ? h('p', { class: 'hint' }, schema.description) : null,
      errorSlot, body);
  }
  return register(ctx, {
    el,
    get() {
      const value = {};
      let any = false;
      for (const { key, node } of children) {
        const v = node.get();
        if (v !== undefined) {
          value[key] = v;
          any = true;
        }
      }
      if (!any && !ctx.required && !ctx.root) return undefined;
      return value;
    },
    set(value) {
      const object = value && typeof value === 'object' && !Array.isArray(value) ? value : {};
      for (const { key, node } of children) node.set(object[key]);
    },
    validate(errors, present) {
      const value = this.get();
      if (value === undefined) {
        if (ctx.required && present) errors.push({ path: ctx.path, message: 'required' });
        return;
      }
      for (const { key, node } of children) {
        const childValue = value[key];
        const before = errors.length;
        node.validate(errors, childValue !== undefined);
        if (childValue === undefined && required.has(key) && errors.length === before) {
          errors.push({ path: `${ctx.path}/${escapePointer(key)}`, message: 'required' });
        }
      }
    },
    ...groupErrors(el, errorSlot, ctx.root),
  });
}

/**
 * The error messages of a fieldset (an object or an array as a whole), joined in one alert in
 * its error slot. The form's root shows its errors at the top of the form instead.
 */
function groupErrors(el, errorSlot, root) {
  let errorEl = null;
  return {
    showError: root ? null : (message) => {
      if (!errorEl) {
        errorEl = h('p', { class: 'field-error', role: 'alert' });
        errorSlot.appendChild(errorEl);
      }
      setText(errorEl, errorEl.textContent ? `${errorEl.textContent}; ${message}` : message);
      el.classList.add('has-error');
    },
    clearError() {
      if (errorEl) errorEl.remove();
      errorEl = null;
      el.classList.remove('has-error');
    },
  };
}

function arrayNode(schema, ctx) {
  const items = [];
  const list = h('ol', { class: 'array-items' });
  const addButton = h('button', { type: 'button', class: 'btn btn-small', onclick: () => {
    add(undefined);
    const last = items[items.length - 1];
    const focusable = last && last.node.el.querySelector('input, select, textarea');
    if (focusable) focusable.focus();
  } }, `Add ${labelOf(schema, ctx)} item`);
  const errorSlot = h('div', { class: 'object-errors' });
  const el = h('fieldset', { class: 'fieldset field array', dataset: { path: ctx.path } },
    h('legend', null, labelOf(schema, ctx), ctx.required && !ctx.root ? h('span', { class: 'required', 'aria-hidden': 'true' }, ' *') : null),
    schema.description ? h('p', { class: 'hint' }, schema.description) : null,
    errorSlot, list, addButton);
  const itemSchema = schema.items;

  function renumber() {
    items.forEach((item, index) => {
      const path = `${ctx.path}/${index}`;
      if (item.path !== path) {
        // Paths move with removals: rebuild with the new pointer, keeping the value.
        const value = item.node.get();
        const fresh = makeItem(index);
        fresh.node.set(value);
        item.li.replaceWith(fresh.li);
        items[index] = fresh;
      }
    });
    for (const key of [...ctx.registry.keys()]) {
      if (key.startsWith(`${ctx.path}/`)) {
        const index = Number(key.slice(ctx.path.length + 1).split('/')[0]);
        if (index >= items.length) ctx.registry.delete(key);
      }
    }
  }

  function makeItem(index) {
    const path = `${ctx.path}/${index}`;
    const itemLabel = `${labelOf(schema, ctx)} ${index + 1}`;
    const node = buildNode(itemSchema, { path, name: `${ctx.name}[${index}]`, label: itemLabel, required: true, registry: ctx.registry });
    const remove = h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'aria-label': `Remove ${itemLabel}`, title: `Remove ${itemLabel}`, onclick: () => {
      const at = items.indexOf(item);
      if (at >= 0) {
        items.splice(at, 1);
        item.li.remove();
        renumber();
        limitAdding();
      }
    } }, 'Remove');
    const li = h('li', { class: 'array-item' }, node.el, remove);
    const item = { node, li, path };
    return item;
  }

  function add(value) {
    const item = makeItem(items.length);
    if (value !== undefined) item.node.set(value);
    else if (itemSchema && itemSchema.default !== undefined) item.node.set(itemSchema.default);
    items.push(item);
    list.appendChild(item.li);
    limitAdding();
  }

  /** No more items than `maxItems`: the button says why it is off. */
  function limitAdding() {
    const full = typeof schema.maxItems === 'number' && items.length >= schema.maxItems;
    addButton.disabled = full;
    addButton.title = full ? `at most ${schema.maxItems} item${schema.maxItems === 1 ? '' : 's'}` : '';
  }

  return register(ctx, {
    el,
    get() {
      if (!items.length && !ctx.required) return undefined;
      return items.map((item) => {
        const v = item.node.get();
        return v === undefined ? null : v;
      });
    },
    set(value) {
      for (const item of items) item.li.remove();
      items.length = 0;
      if (Array.isArray(value)) for (const v of value) add(v);
      limitAdding();
    },
    validate(errors, present) {
      const value = this.get();
      if (value === undefined) return;
      if (schema.minItems !== undefined && value.length < schema.minItems) errors.push({ path: ctx.path, message: `needs at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}` });
      if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push({ path: ctx.path, message: `takes at most ${schema.maxItems} items` });
      for (const item of items) {
        if (item.node.get() === undefined) errors.push({ path: item.path, message: 'required' });
        else item.node.validate(errors, present);
      }
    },
    ...groupErrors(el, errorSlot, false),
  });
}

function stringNode(schema, ctx) {
  const long = (schema.maxLength || 0) > 200 || schema.format === 'textarea' || schema.contentMediaType === 'text/plain';
  const control = long
    ? h('textarea', { class: 'input textarea', rows: '4', name: ctx.name, spellcheck: 'false' })
    : h('input', { class: 'input', type: 'text', name: ctx.name, spellcheck: 'false', autocomplete: 'off' });
  if (schema.maxLength !== undefined) control.maxLength = schema.maxLength;
  if (schema.format === 'date-time') control.placeholder = '2026-01-31T12:00:00Z';
  else if (schema.examples && schema.examples.length && typeof schema.examples[0] === 'string') control.placeholder = schema.examples[0];
  const shell = fieldShell(schema, ctx, control);
  return register(ctx, {
    el: shell.wrapper,
    get() {
      const value = control.value;
      if (value === '' && !ctx.required) return undefined;
      if (value === '' && ctx.required && (schema.minLength || 0) > 0) return undefined;
      return value;
    },
    set(value) {
      control.value = typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
    },
    validate(errors) {
      const value = this.get();
      if (value === undefined) return;
      checkString(schema, value, ctx.path, errors);
      checkEnum(schema, value, ctx.path, errors);
    },
    showError: shell.showError,
    clearError: shell.clearError,
  });
}

function checkString(schema, value, path, errors) {
  const length = [...value].length;
  if (schema.minLength !== undefined && length < schema.minLength) {
    errors.push({ path, message: schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters` });
  }
  if (schema.maxLength !== undefined && length > schema.maxLength) errors.push({ path, message: `must be at most ${schema.maxLength} characters` });
  if (schema.pattern) {
    try {
      if (!new RegExp(schema.pattern, 'u').test(value)) errors.push({ path, message: `must match the pattern ${schema.pattern}` });
    } catch {
      /* a pattern JavaScript cannot read: the server checks it */
    }
  }
}

function checkEnum(schema, value, path, errors) {
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => JSON.stringify(option) === JSON.stringify(value))) {
    errors.push({ path, message: `must be one of ${schema.enum.map((o) => JSON.stringify(o)).join(', ')}` });
  }
}

function numberNode(schema, ctx) {
  const integer = primaryType(schema) === 'integer';
  const control = h('input', { class: 'input input-number', type: 'number', name: ctx.name, step: integer ? '1' : 'any', inputmode: integer ? 'numeric' : 'decimal' });
  if (schema.minimum !== undefined) control.min = String(schema.minimum);
  if (schema.maximum !== undefined) control.max = String(schema.maximum);
  const shell = fieldShell(schema, ctx, control);
  return register(ctx, {
    el: shell.wrapper,
    get() {
      if (control.value === '') {
        // A half-typed number ("1e") leaves value empty but validity.badInput set.
        return control.validity && control.validity.badInput ? NaN : undefined;
      }
      return Number(control.value);
    },
    set(value) {
      control.value = typeof value === 'number' && Number.isFinite(value) ? String(value) : '';
    },
    validate(errors) {
      const value = this.get();
      if (value === undefined) return;
      const path = ctx.path;
      if (!Number.isFinite(value)) {
        errors.push({ path, message: 'must be a number' });
        return;
      }
      if (integer && !Number.isInteger(value)) errors.push({ path, message: 'must be a whole number' });
      if (schema.minimum !== undefined && value < schema.minimum) errors.push({ path, message: `must be at least ${schema.minimum}` });
      if (schema.maximum !== undefined && value > schema.maximum) errors.push({ path, message: `must be at most ${schema.maximum}` });
      if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) errors.push({ path, message: `must be greater than ${schema.exclusiveMinimum}` });
      if (typeof schema.exclusiveMaximum === 'number' && value >= schema.exclusiveMaximum) errors.push({ path, message: `must be less than ${schema.exclusiveMaximum}` });
      if (typeof schema.multipleOf === 'number' && schema.multipleOf > 0 && Math.abs(value / schema.multipleOf - Math.round(value / schema.multipleOf)) > 1e-9) {
        errors.push({ path, message: `must be a multiple of ${schema.multipleOf}` });
      }
      checkEnum(schema, value, path, errors);
    },
    showError: shell.showError,
    clearError: shell.clearError,
  });
}

function booleanNode(schema, ctx) {
  const control = h('input', { type: 'checkbox', class: 'checkbox', name: ctx.name });
  // An optional box nobody touched stays out of the input (as an empty text field does);
  // once ticked, or set to false by a prefill or default, false is sent as false.
  let explicit = false;
  control.addEventListener('change', () => {
    explicit = true;
  });
  const shell = fieldShell(schema, ctx, control, { inlineLabel: true });
  return register(ctx, {
    el: shell.wrapper,
    get: () => (control.checked ? true : explicit || ctx.required ? false : undefined),
    set(value) {
      control.checked = value === true;
      explicit = value === true || value === false;
    },
    validate() {},
    showError: shell.showError,
    clearError: shell.clearError,
  });
}

function enumNode(schema, ctx) {
  const control = h('select', { class: 'select', name: ctx.name });
  const options = schema.enum;
  control.appendChild(h('option', { value: '' }, ctx.required ? 'Choose…' : '—'));
  options.forEach((option, index) => {
    control.appendChild(h('option', { value: String(index) }, typeof option === 'string' ? option : JSON.stringify(option)));
  });
  const shell = fieldShell(schema, ctx, control);
  return register(ctx, {
    el: shell.wrapper,
    get() {
      if (control.value === '') return undefined;
      return options[Number(control.value)];
    },
    set(value) {
      const index = options.findIndex((option) => JSON.stringify(option) === JSON.stringify(value));
      control.value = index >= 0 ? String(index) : '';
    },
    validate() {},
    showError: shell.showError,
    clearError: shell.clearError,
  });
}

function constNode(schema, ctx) {
  const control = h('input', { class: 'input mono', type: 'text', readonly: true, value: JSON.stringify(schema.const) });
  const shell = fieldShell(schema, ctx, control);
  return register(ctx, {
    el: shell.wrapper,
    get: () => schema.const,
    set() {},
    validate() {},
    showError: shell.showError,
    clearError: shell.clearError,
  });
}

/** A schema part the form cannot render: edited as JSON text. */
function rawNode(schema, ctx) {
  const control = h('textarea', { class: 'input textarea mono', rows: ctx.root ? '10' : '4', name: ctx.name, spellcheck: 'false', placeholder: 'JSON' });
  const shell = fieldShell(schema && typeof schema === 'object' ? { ...schema, description: [schema.description, 'JSON'].filter(Boolean).join(' — ') } : { description: 'JSON' }, ctx, control);
  return register(ctx, {
    el: shell.wrapper,
    get() {
      const text = control.value.trim();
      if (!text) return ctx.root ? null : undefined;
      try {
        return JSON.parse(text);
      } catch {
        return undefined;
      }
    },
    set(value) {
      control.value = value === undefined ? '' : JSON.stringify(value, null, 2);
    },
    validate(errors) {
      const text = control.value.trim();
      if (!text) return;
      try {
        JSON.parse(text);
      } catch (error) {
        errors.push({ path: ctx.path, message: `not valid JSON: ${error.message}` });
      }
    },
    showError: shell.showError,
    clearError: shell.clearError,
  });
}
