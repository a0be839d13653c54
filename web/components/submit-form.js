// The submit page: pick a type, fill the form generated from its schema (or raw JSON), set the
// optional advanced fields, submit over REST (so a 422 brings `details` for the fields), and go
// to the new job. `?from=ID` prefills type and input from an existing job; `?type=` picks a type.

import { api } from '../api.js';
import { h, replaceChildren, setAttr, setText } from '../dom.js';
import { showNotice } from '../store.js';
import { buildSchemaForm } from './schema-form.js';

export function createSubmitForm({ store, navigate }) {
  const typeSelect = h('select', { id: 'submit-type', class: 'select', required: true });
  const typeInfo = h('p', { class: 'hint' });
  const topErrors = h('div', { class: 'form-errors', role: 'alert', hidden: true });
  const rawToggle = h('button', { type: 'button', class: 'btn btn-small toggle', 'aria-pressed': 'false', onclick: () => setRaw(!raw) }, 'Raw JSON');
  const formHost = h('div', { class: 'schema-host' });
  const rawInput = h('textarea', { id: 'submit-raw', class: 'input textarea mono', rows: '12', spellcheck: 'false', placeholder: '{ }' });
  const rawField = h('div', { class: 'field', hidden: true },
    h('div', { class: 'field-head' }, h('label', { for: 'submit-raw' }, 'Input (JSON)')),
    rawInput,
    h('p', { class: 'hint' }, 'Any JSON value; the server checks it against the type’s schema.'));
  const rawError = { el: null };
  // A JSON error goes as soon as the text parses.
  rawInput.addEventListener('input', () => {
    if (!rawError.el) return;
    try {
      JSON.parse(rawInput.value.trim() || 'null');
      rawError.el.remove();
      rawError.el = null;
    } catch {
      /* still not JSON: the error stays */
    }
  });

  // Advanced
  const queueSelect = h('select', { id: 'submit-queue', class: 'select' });
  const priority = h('input', { id: 'submit-priority', type: 'number', class: 'input input-number', min: '-1000', max: '1000', step: '1', placeholder: '0' });
  const runAt = h('input', { id: 'submit-run-at', type: 'datetime-local', class: 'input', step: '1' });
  const maxAttempts = h('input', { id: 'submit-max-attempts', type: 'number', class: 'input input-number', min: '1', max: '100', step: '1' });
  const advancedFields = {
    queue: plainField('submit-queue', 'Queue override', queueSelect, 'Run in another declared queue instead of the type’s own.'),
    priority: plainField('submit-priority', 'Priority', priority, '−1000 … 1000; higher runs first.'),
    run_at: plainField('submit-run-at', 'Run at', runAt, 'Not before this local time.'),
    max_attempts: plainField('submit-max-attempts', 'Max attempts', maxAttempts, '1 … 100; the type’s default when empty.'),
  };
  const advanced = h('details', { class: 'advanced' }, h('summary', null, 'Advanced options'),
    h('div', { class: 'advanced-grid' }, Object.values(advancedFields).map((f) => f.wrapper)));

  const submitButton = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Submit job');
  const form = h(
    'form',
    { class: 'submit-form card', novalidate: true, onsubmit: (event) => {
      event.preventDefault();
      submit();
    } },
    h('div', { class: 'field' }, h('div', { class: 'field-head' }, h('label', { for: 'submit-type' }, 'Type')), typeSelect, typeInfo),
    h('div', { class: 'input-head' }, h('h2', { class: 'card-title' }, 'Input'), rawToggle),
    topErrors,
    formHost,
    rawField,
    advanced,
    h('div', { class: 'form-actions' }, submitButton),
  );
  const el = h('main', { class: 'page page-submit', id: 'main' }, h('div', { class: 'page-head' }, h('h1', null, 'Submit a job')), form);

  let schemaForm = null;
  let raw = false;
  let currentType = null;
  let prefill = null; // {type, input} from ?from=
  let prefillError = null;

  typeSelect.addEventListener('change', () => chooseType(typeSelect.value, undefined));

  function plainField(id, label, control, hintText) {
    const hint = h('p', { class: 'hint', id: `${id}-hint` }, hintText);
    control.setAttribute('aria-describedby', hint.id);
    const wrapper = h('div', { class: 'field' }, h('div', { class: 'field-head' }, h('label', { for: id }, label)), control, hint);
    let errorEl = null;
    return {
      wrapper,
      showError(message) {
        if (!errorEl) {
          errorEl = h('p', { class: 'field-error', role: 'alert' });
          wrapper.appendChild(errorEl);
        }
        setText(errorEl, message);
        control.setAttribute('aria-invalid', 'true');
        advanced.open = true;
      },
      clearError() {
        if (errorEl) errorEl.remove();
        errorEl = null;
        control.removeAttribute('aria-invalid');
      },
    };
  }

  function typeByName(name) {
    return store.getState().types.list.find((t) => t.name === name) || null;
  }

  function chooseType(name, input) {
    clearErrors();
    const type = typeByName(name);
    currentType = type;
    if (!type) {
      schemaForm = null;
      replaceChildren(formHost, h('p', { class: 'muted' }, 'Choose a type to see its input form.'));
      setText(typeInfo, '');
      rawToggle.disabled = true;
      rawField.hidden = true;
      formHost.hidden = false;
      return;
    }
    const bits = [`queue ${type.queue}`, `${type.kind}`];
    if (type.command) bits.push(type.command.join(' '));
    bits.push(`max ${type.max_attempts} attempt${type.max_attempts === 1 ? '' : 's'}`);
    if (type.timeout_secs) bits.push(`timeout ${type.timeout_secs}s`);
    setText(typeInfo, bits.join(' · '));
    syncQueueOptions();
    if (type.schema && typeof type.schema === 'object') {
      schemaForm = buildSchemaForm(type.schema);
      replaceChildren(formHost, schemaForm.el);
      rawToggle.disabled = false;
      if (input !== undefined) schemaForm.setValue(input);
      setRaw(false, { keepText: false });
      if (input !== undefined && !roundTrips(input)) {
        // The form cannot hold this input exactly (extra keys…): edit it as JSON instead.
        rawInput.value = JSON.stringify(input, null, 2);
        setRaw(true, { keepText: true });
      }
    } else {
      schemaForm = null;
      replaceChildren(formHost);
      rawInput.value = input !== undefined ? JSON.stringify(input, null, 2) : '';
      setRaw(true, { keepText: true });
      rawToggle.disabled = true;
      setAttr(rawToggle, 'title', 'This type has no schema: its input is JSON');
    }
  }

  function roundTrips(input) {
    try {
      return JSON.stringify(canonical(schemaForm.getValue())) === JSON.stringify(canonical(input));
    } catch {
      return false;
    }
  }

  function setRaw(on, { keepText = false } = {}) {
    if (on && !raw && schemaForm && !keepText) {
      rawInput.value = JSON.stringify(schemaForm.getValue(), null, 2);
    }
    if (!on && raw && schemaForm) {
      const text = rawInput.value.trim();
      if (text) {
        let value;
        try {
          value = JSON.parse(text);
        } catch (error) {
          showTop([`Fix the JSON before going back to the form: ${error.message}`]);
          return;
        }
        schemaForm.setValue(value);
      }
    }
    raw = on;
    setAttr(rawToggle, 'aria-pressed', on ? 'true' : 'false');
    setAttr(rawToggle, 'title', null);
    rawField.hidden = !on;
    formHost.hidden = on;
  }

  function clearErrors() {
    topErrors.hidden = true;
    topErrors.replaceChildren();
    if (schemaForm) schemaForm.clearErrors();
    for (const field of Object.values(advancedFields)) field.clearError();
    if (rawError.el) rawError.el.remove();
    rawError.el = null;
  }

  function showTop(messages) {
    if (!messages.length) return;
    topErrors.hidden = false;
    replaceChildren(topErrors, messages.length === 1 ? h('p', null, messages[0]) : h('ul', null, messages.map((m) => h('li', null, m))));
  }

  function showRawError(message) {
    rawError.el = h('p', { class: 'field-error', role: 'alert' }, message);
    rawField.appendChild(rawError.el);
  }

  function readInput() {
    if (raw || !schemaForm) {
      const text = rawInput.value.trim();
      if (!text) return { ok: true, value: null };
      try {
        return { ok: true, value: JSON.parse(text) };
      } catch (error) {
        showRawError(`Not valid JSON: ${error.message}`);
        return { ok: false };
      }
    }
    const errors = schemaForm.validate();
    if (errors.length) {
      const unmapped = schemaForm.showErrors(errors);
      showTop(unmapped.map(pathMessage));
      focusFirstError();
      return { ok: false };
    }
    return { ok: true, value: schemaForm.getValue() };
  }

  function readAdvanced(job) {
    let ok = true;
    if (queueSelect.value) job.queue = queueSelect.value;
    if (priority.value !== '' || priority.validity.badInput) {
      const value = Number(priority.value);
      if (!Number.isInteger(value) || value < -1000 || value > 1000 || priority.validity.badInput) {
        advancedFields.priority.showError('must be a whole number from -1000 to 1000');
        ok = false;
      } else job.priority = value;
    }
    if (runAt.value) {
      const date = new Date(runAt.value);
      if (Number.isNaN(date.getTime())) {
        advancedFields.run_at.showError('not a valid date and time');
        ok = false;
      } else job.run_at = date.toISOString();
    }
    if (maxAttempts.value !== '' || maxAttempts.validity.badInput) {
      const value = Number(maxAttempts.value);
      if (!Number.isInteger(value) || value < 1 || value > 100 || maxAttempts.validity.badInput) {
        advancedFields.max_attempts.showError('must be a whole number from 1 to 100');
        ok = false;
      } else job.max_attempts = value;
    }
    return ok;
  }

  async function submit() {
    clearErrors();
    if (!currentType) {
      showTop(['Choose a type first.']);
      typeSelect.focus();
      return;
    }
    const input = readInput();
    const job = { type: currentType.name, input: input.ok ? input.value : null };
    const advancedOk = readAdvanced(job);
    if (!input.ok || !advancedOk) {
      focusFirstError();
      return;
    }
    submitButton.disabled = true;
    setText(submitButton, 'Submitting…');
    try {
      const created = await api.submit(job);
      store.dispatch(showNotice('success', `Submitted job ${created.id}`));
      navigate(`/jobs/${created.id}`);
    } catch (error) {
      handleServerError(error);
    } finally {
      submitButton.disabled = false;
      setText(submitButton, 'Submit job');
    }
  }

  function handleServerError(error) {
    const details = error.details || [];
    if (details.length && schemaForm && !raw) {
      // Each detail goes next to its field; what no field takes goes to the top.
      showTop(schemaForm.showErrors(details).map(pathMessage));
      focusFirstError();
      return;
    }
    if (details.length) {
      showTop(details.map(pathMessage));
      return;
    }
    const message = error.message || 'The job could not be submitted.';
    // Map the request-level fields the server names to the advanced inputs.
    const named = /`?(queue|priority|run_at|max_attempts)`?/.exec(message);
    if (error.code === 'unknown_queue') advancedFields.queue.showError(message);
    else if (error.code === 'invalid_request' && named && advancedFields[named[1]]) advancedFields[named[1]].showError(message);
    else showTop([message]);
    focusFirstError();
  }

  function focusFirstError() {
    const invalid = form.querySelector('[aria-invalid="true"]');
    if (invalid) {
      // Centred, so the sticky header never covers it.
      invalid.focus({ preventScroll: true });
      invalid.scrollIntoView({ block: 'center' });
    }
    else if (!topErrors.hidden) topErrors.scrollIntoView({ block: 'nearest' });
  }

  function syncQueueOptions() {
    const queues = store.getState().queues.list.map((q) => q.name);
    const selected = queueSelect.value;
    const defaultLabel = currentType ? `Type’s default (${currentType.queue})` : 'Type’s default';
    replaceChildren(queueSelect, h('option', { value: '' }, defaultLabel), queues.map((name) => h('option', { value: name }, name)));
    if (queues.includes(selected)) queueSelect.value = selected;
  }

  function syncTypeOptions(state) {
    const names = state.types.list.map((t) => t.name);
    const selected = typeSelect.value;
    replaceChildren(typeSelect,
      h('option', { value: '' }, state.types.loaded ? (names.length ? 'Choose a type…' : 'No types declared') : 'Loading types…'),
      names.map((name) => h('option', { value: name }, name)),
    );
    if (names.includes(selected)) typeSelect.value = selected;
  }

  // ?from=ID / ?type=NAME
  const query = store.getState().route.query;
  if (query.from) {
    api.job(query.from).then(
      (job) => {
        prefill = { type: job.type, input: job.input };
        applyPrefill();
        store.dispatch(showNotice('info', `Prefilled from job ${job.id}`));
      },
      (error) => {
        prefillError = `Could not load job ${query.from} to prefill: ${error.message}`;
        showTop([prefillError]);
      },
    );
  }

  function applyPrefill() {
    const state = store.getState();
    if (!state.types.loaded) return;
    if (prefill) {
      if (!typeByName(prefill.type)) {
        showTop([`Job type ${prefill.type} is no longer declared.`]);
        prefill = null;
        return;
      }
      typeSelect.value = prefill.type;
      chooseType(prefill.type, prefill.input);
      prefill = null;
    }
  }

  let typesSeen = null;
  function update(state) {
    if (state.types !== typesSeen) {
      typesSeen = state.types;
      syncTypeOptions(state);
      if (state.types.loaded && !currentType && !prefill && !query.from) {
        const wanted = query.type && typeByName(query.type) ? query.type : state.types.list.length === 1 ? state.types.list[0].name : '';
        typeSelect.value = wanted;
        chooseType(wanted, undefined);
      } else if (currentType) {
        currentType = typeByName(currentType.name) || currentType;
      }
      applyPrefill();
    }
  }
  chooseType('', undefined);
  update(store.getState());
  const unsubscribe = store.subscribe((state, prev) => {
    update(state);
    if (state.queues.list !== prev.queues.list) syncQueueOptions();
  });
  syncQueueOptions();
  return { el, destroy: unsubscribe };
}

function pathMessage(error) {
  return error.path ? `${error.path}: ${error.message}` : error.message;
}

function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical(value[key])]));
  }
  return value;
}
