// The jobs page: filters (kept in the URL), live-pause toggle, bulk actions, the live table and
// "Load older". Inputs keep their own state in the DOM; only a settled filter becomes a URL.

import { api } from '../api.js';
import { h, replaceChildren, setAttr, setText } from '../dom.js';
import { plural } from '../format.js';
import { STATUSES, TIME_BOUNDS, filterToSearch, hasTimeRange, matchesFilter } from '../model.js';
import { showNotice } from '../store.js';
import { confirmDialog } from './dialog.js';
import { createJobsTable } from './jobs-table.js';

const SEARCH_DEBOUNCE_MS = 250;

/** The orders the list offers: `sort:order` and its name. */
const SORT_CHOICES = [
  ['created:desc', 'Newest first'],
  ['created:asc', 'Oldest first'],
  ['started:desc', 'Started, latest first'],
  ['started:asc', 'Started, earliest first'],
  ['finished:desc', 'Finished, latest first'],
  ['finished:asc', 'Finished, earliest first'],
  ['duration:desc', 'Longest run first'],
  ['duration:asc', 'Shortest run first'],
  ['attempts:desc', 'Most attempts first'],
  ['attempts:asc', 'Fewest attempts first'],
];

/** Spans of the time filter's quick choices, in minutes. */
const SPANS = [['15m', 'last 15 minutes', 15], ['1h', 'last hour', 60], ['24h', 'last 24 hours', 24 * 60], ['7d', 'last 7 days', 7 * 24 * 60]];

const TIME_CHOICES = [
  ['', 'Any time'],
  ...['created', 'finished'].flatMap((field) => SPANS.map(([span, words]) => [`${field}:${span}`, `${field === 'created' ? 'Created' : 'Finished'} in the ${words}`])),
  ['custom', 'Custom range…'],
];

/** An instant as a datetime-local input shows it (local time, to the minute). */
function localInput(iso) {
  if (!iso) return '';
  const at = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

/** The time bounds of a filter, all blank. */
const noTimeRange = () => Object.fromEntries(TIME_BOUNDS.map((bound) => [bound, '']));

export function createJobsPage({ store, navigate, session }) {
  const table = createJobsTable({ store, navigate });

  // Filters
  // Each chip shows how many jobs of its status the other filters match; the count is not
  // part of the button's name (it stays the status).
  const chipCounts = {};
  const chips = STATUSES.map((status) => {
    chipCounts[status] = h('span', { class: 'chip-count num', 'aria-hidden': 'true', dataset: { testid: `count-${status}` } });
    return h('button', { type: 'button', class: 'chip', dataset: { status }, 'aria-pressed': 'false', onclick: () => toggleStatus(status) }, status, chipCounts[status]);
  });
  const typeSelect = h('select', { id: 'filter-type', class: 'select', onchange: () => setFilter({ type: typeSelect.value }) });
  const queueSelect = h('select', { id: 'filter-queue', class: 'select', onchange: () => setFilter({ queue: queueSelect.value }) });
  const search = h('input', {
    id: 'filter-search', type: 'search', class: 'input search-input', placeholder: 'Search id, type or input',
    maxlength: '200', autocomplete: 'off', spellcheck: 'false', dataset: { search: '' },
  });
  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => setFilter({ q: search.value.trim() }, { replace: true }), SEARCH_DEBOUNCE_MS);
  });
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      clearTimeout(searchTimer);
      setFilter({ q: search.value.trim() }, { replace: true });
    } else if (event.key === 'Escape' && search.value) {
      search.value = '';
      clearTimeout(searchTimer);
      setFilter({ q: '' }, { replace: true });
    }
  });
  const clearFilters = h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => navigate('/jobs') }, 'Clear filters');

  const sortSelect = h('select', {
    id: 'filter-sort', class: 'select',
    onchange: () => {
      const [sort, order] = sortSelect.value.split(':');
      setFilter({ sort, order });
    },
  }, SORT_CHOICES.map(([value, label]) => h('option', { value }, label)));

  // Time: a quick span (from now back), or a custom range of created or finished times. A span
  // becomes fixed instants in the URL, so a shared link shows the same jobs.
  let chosenSpan = null; // { value, search }: the span picked, while the filter is still its own
  const timeSelect = h('select', { id: 'filter-time', class: 'select', onchange: () => pickTime() },
    TIME_CHOICES.map(([value, label]) => h('option', { value }, label)));
  const rangeField = h('select', { id: 'range-field', class: 'select', onchange: () => applyRange() },
    h('option', { value: 'created' }, 'Created'), h('option', { value: 'finished' }, 'Finished'));
  const rangeFrom = h('input', { id: 'range-from', type: 'datetime-local', class: 'input', onchange: () => applyRange() });
  const rangeTo = h('input', { id: 'range-to', type: 'datetime-local', class: 'input', onchange: () => applyRange() });
  const rangeGroup = h('div', { class: 'range-group', role: 'group', 'aria-label': 'Custom time range', hidden: true },
    h('div', { class: 'inline-field' }, h('label', { for: 'range-field' }, 'Field'), rangeField),
    h('div', { class: 'inline-field' }, h('label', { for: 'range-from' }, 'From'), rangeFrom),
    h('div', { class: 'inline-field' }, h('label', { for: 'range-to' }, 'Until'), rangeTo));

  function pickTime() {
    const value = timeSelect.value;
    if (value === 'custom') {
      rangeGroup.hidden = false;
      rangeFrom.focus();
      return;
    }
    rangeGroup.hidden = true;
    if (!value) {
      chosenSpan = null;
      setFilter(noTimeRange());
      return;
    }
    const [field, span] = value.split(':');
    const minutes = SPANS.find(([name]) => name === span)[2];
    const change = { ...noTimeRange(), [`${field}_after`]: new Date(Date.now() - minutes * 60_000).toISOString() };
    chosenSpan = { value, search: filterToSearch({ ...currentFilter(), q: search.value.trim(), ...change }) };
    setFilter(change);
  }

  function applyRange() {
    const field = rangeField.value;
    const instant = (input) => (input.value ? new Date(input.value).toISOString() : '');
    chosenSpan = null;
    setFilter({ ...noTimeRange(), [`${field}_after`]: instant(rangeFrom), [`${field}_before`]: instant(rangeTo) });
  }

  /** The time controls as the filter says, unless the reader's own pick still describes it. */
  function showTime(filter) {
    if (chosenSpan && chosenSpan.search === filterToSearch(filter)) {
      timeSelect.value = chosenSpan.value;
      rangeGroup.hidden = true;
      return;
    }
    chosenSpan = null;
    if (!hasTimeRange(filter)) {
      if (timeSelect.value !== 'custom' || document.activeElement === timeSelect) timeSelect.value = '';
      rangeGroup.hidden = timeSelect.value !== 'custom';
      return;
    }
    const field = filter.finished_after || filter.finished_before ? 'finished' : 'created';
    timeSelect.value = 'custom';
    rangeGroup.hidden = false;
    rangeField.value = field;
    if (document.activeElement !== rangeFrom) rangeFrom.value = localInput(filter[`${field}_after`]);
    if (document.activeElement !== rangeTo) rangeTo.value = localInput(filter[`${field}_before`]);
  }
  // Root jobs by default: a tree shows as its root, with its children's counts.
  const allJobs = h('input', { id: 'filter-all', type: 'checkbox', class: 'checkbox', onchange: () => setFilter({ all: allJobs.checked }) });

  // On a phone the filters fold into one "Filters" control, so the first job shows on the first
  // screen; wider, they are always open.
  const narrow = window.matchMedia('(max-width: 720px)');
  const filtersFold = h('summary', { class: 'filters-summary btn btn-small' }, 'Filters');
  const onWidth = () => {
    if (!narrow.matches && filtersFold.parentNode) filtersFold.parentNode.open = true;
  };
  narrow.addEventListener('change', onWidth);
  const filters = h(
    'div',
    { class: 'filters' },
    h('div', { class: 'chips', role: 'group', 'aria-label': 'Status' }, chips),
    h(
      'div',
      { class: 'filter-controls' },
      h('div', { class: 'inline-field' }, h('label', { for: 'filter-type' }, 'Type'), typeSelect),
      h('div', { class: 'inline-field' }, h('label', { for: 'filter-queue' }, 'Queue'), queueSelect),
      h('div', { class: 'inline-field grow' }, h('label', { for: 'filter-search' }, 'Search'), search),
      h('div', { class: 'inline-field' }, h('label', { for: 'filter-time' }, 'Time'), timeSelect),
      h('div', { class: 'inline-field' }, h('label', { for: 'filter-sort' }, 'Sort'), sortSelect),
      h('div', { class: 'inline-field' }, allJobs, h('label', { for: 'filter-all' }, 'Include child jobs')),
      clearFilters,
    ),
    rangeGroup,
  );

  // Summary, select-all-matching and live pause
  const summary = h('span', { class: 'muted', dataset: { testid: 'summary' } });
  const selectMatching = h('button', { type: 'button', class: 'btn btn-link', hidden: true, onclick: () => store.dispatch({ type: 'jobs/select-all-matching' }) },
    'Select all matching', h('span', { class: 'count' }));
  const pendingText = h('span', { class: 'pending', role: 'status' });
  const pauseButton = h('button', { type: 'button', class: 'btn btn-small', 'aria-pressed': 'false', onclick: () => {
    store.dispatch({ type: 'jobs/pause', paused: !store.getState().jobs.paused });
  } }, 'Pause live');
  const statusBar = h('div', { class: 'list-bar' }, h('div', { class: 'list-bar-start' }, summary, selectMatching), h('div', { class: 'list-bar-end' }, pendingText, pauseButton));

  // Bulk actions
  const bulkText = h('span', { class: 'bulk-text' });
  const cancelSelected = h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', onclick: () => bulk('cancel') }, 'Cancel selected');
  const retrySelected = h('button', { type: 'button', class: 'btn btn-small', onclick: () => bulk('retry') }, 'Retry selected');
  const clearSelection = h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => store.dispatch({ type: 'jobs/select-none' }) }, 'Clear selection');
  const bulkBar = h('div', { class: 'bulk-bar', hidden: true, role: 'region', 'aria-label': 'Bulk actions' }, bulkText, h('div', { class: 'bulk-actions' }, cancelSelected, retrySelected, clearSelection));

  const loadOlder = h('button', { type: 'button', class: 'btn', onclick: () => older() }, 'Load older');
  const footer = h('div', { class: 'list-footer' }, loadOlder);

  const el = h(
    'main',
    { class: 'page page-jobs', id: 'main' },
    h('div', { class: 'page-head' }, h('h1', null, 'Jobs')),
    h('details', { class: 'filters-fold', open: !narrow.matches }, filtersFold, filters),
    statusBar,
    bulkBar,
    table.el,
    footer,
  );

  function currentFilter() {
    return store.getState().jobs.filter;
  }

  function setFilter(change, { replace = false } = {}) {
    // What is typed in the search box counts even before its debounce fires.
    clearTimeout(searchTimer);
    const filter = { ...currentFilter(), q: search.value.trim(), ...change };
    navigate(`/jobs${filterToSearch(filter)}`, { replace });
  }

  function toggleStatus(status) {
    const current = currentFilter().status;
    const next = current.includes(status) ? current.filter((s) => s !== status) : [...current, status];
    setFilter({ status: STATUSES.filter((s) => next.includes(s)) });
  }

  async function older() {
    const { jobs } = store.getState();
    if (!jobs.nextCursor || jobs.loadingOlder) return;
    const filter = jobs.filter;
    store.dispatch({ type: 'jobs/older-loading' });
    try {
      // Through the session, so the list keeps hearing of these jobs, even as they leave it.
      const page = await session.request('more', { key: 'jobs', before: jobs.nextCursor });
      store.dispatch({ type: 'jobs/older-loaded', filter, jobs: page.jobs, nextCursor: page.next_cursor ?? null });
    } catch (error) {
      store.dispatch({ type: 'jobs/older-failed', error: error.message });
    }
  }

  async function bulk(action) {
    const { jobs } = store.getState();
    const verb = action === 'cancel' ? 'Cancel' : 'Retry';
    let body;
    if (jobs.allMatching) {
      const filter = jobs.filter;
      let count = jobs.count;
      try {
        count = (await api.count(filter)).count;
      } catch {
        /* keep the last count */
      }
      const described = describeFilter(filter);
      const ok = await confirmDialog({
        title: `${verb} ${count === null ? 'all' : plural(count, 'job')} matching the filter?`,
        body: [
          h('p', null, described ? `Filter: ${described}` : 'No filter: this covers every job.'),
          h('p', { class: 'muted' }, action === 'cancel'
            ? 'Finished jobs are skipped. Running jobs are stopped.'
            : 'Unfinished jobs are skipped. Each finished job runs again as a new job.'),
        ],
        danger: action === 'cancel',
      });
      if (!ok) return;
      const wire = {};
      if (filter.status.length) wire.status = filter.status;
      if (filter.type) wire.type = [filter.type];
      if (filter.queue) wire.queue = [filter.queue];
      if (filter.q) wire.q = filter.q;
      if (!filter.all) wire.roots = true;
      for (const bound of TIME_BOUNDS) if (filter[bound]) wire[bound] = filter[bound];
      body = { action, filter: wire };
    } else {
      const ids = Object.keys(jobs.selected);
      if (!ids.length) return;
      // Cancelling stops running jobs: ask first, as for "all matching". Retrying only adds jobs.
      if (action === 'cancel') {
        const ok = await confirmDialog({
          title: `Cancel ${plural(ids.length, 'selected job')}?`,
          body: [
            h('p', null, `Jobs ${ids.length > 10 ? `${ids.slice(0, 10).join(', ')} and ${ids.length - 10} more` : ids.join(', ')}.`),
            h('p', { class: 'muted' }, 'Finished jobs are skipped. Running jobs are stopped.'),
          ],
          danger: true,
        });
        if (!ok) return;
      }
      body = { action, ids };
    }
    cancelSelected.disabled = true;
    retrySelected.disabled = true;
    try {
      const result = await api.bulk(body);
      store.dispatch({ type: 'jobs/select-none' });
      store.dispatch(showNotice('success', bulkMessage(action, result)));
      // The bulk bar goes with the selection: focus lands on the list's summary, not nowhere.
      setAttr(summary, 'tabindex', '-1');
      summary.focus();
    } catch (error) {
      store.dispatch(showNotice('error', `${verb} failed: ${error.message}`));
    } finally {
      cancelSelected.disabled = false;
      retrySelected.disabled = false;
    }
  }

  // Count of jobs matching the filter (for "Select all matching"), refreshed as jobs change.
  const matchingCount = throttledRead(async () => {
    const filter = currentFilter();
    try {
      const { count } = await api.count(filter);
      store.dispatch({ type: 'jobs/count', filter, count });
    } catch (error) {
      if (error.status === 404) matchingCount.stop();
    }
  }, 1000);


  function syncOptions(select, names, selected, allLabel) {
    const wanted = [...names];
    if (selected && !wanted.includes(selected)) wanted.push(selected);
    const current = [...select.options].slice(1).map((o) => o.value);
    if (current.join('\n') !== wanted.join('\n') || !select.options.length) {
      replaceChildren(select, h('option', { value: '' }, allLabel), wanted.map((name) => h('option', { value: name }, name)));
    }
    if (select.value !== selected) select.value = selected;
  }

  // The chips' counts, for the type, queue and search filters, read again as jobs change.
  const chipCountsRead = throttledRead(async () => {
    const filter = currentFilter();
    try {
      const counts = await Promise.all(STATUSES.map((status) => api.count({ ...filter, status: [status] })));
      if (filter !== currentFilter()) return;
      STATUSES.forEach((status, index) => showChipCount(status, counts[index].count, filter));
    } catch {
      /* keep the last counts */
    }
  }, 2000);


  function showChipCount(status, count, filter) {
    const chip = chips[STATUSES.indexOf(status)];
    setText(chipCounts[status], count.toLocaleString());
    setAttr(chip, 'title', `${count.toLocaleString()} ${status} ${count === 1 ? 'job matches' : 'jobs match'} the other filters`);
    // A job waits only for children it has: no chip until one can match.
    if (status === 'waiting') chip.hidden = count === 0 && !filter.status.includes(status);
  }

  let lastFilter = null;
  function update(state, prev) {
    const jobs = state.jobs;
    const filter = jobs.filter;
    if (filter !== lastFilter) {
      lastFilter = filter;
      for (const chip of chips) setAttr(chip, 'aria-pressed', filter.status.includes(chip.dataset.status) ? 'true' : 'false');
      if (document.activeElement !== search && search.value.trim() !== filter.q) search.value = filter.q;
      allJobs.checked = filter.all;
      sortSelect.value = `${filter.sort}:${filter.order}`;
      showTime(filter);
      table.showSort(filter);
      clearFilters.hidden = !(filter.status.length || filter.type || filter.queue || filter.q || filter.all
        || filter.sort !== 'created' || filter.order !== 'desc' || hasTimeRange(filter));
      matchingCount.refresh();
      chipCountsRead.refresh();
    } else if (prev && prev.jobs.byId !== jobs.byId) {
      matchingCount.refresh(1500);
      chipCountsRead.refresh(2000);
    }
    if (!prev || prev.types !== state.types || prev.jobs.filter !== filter) {
      syncOptions(typeSelect, state.types.list.map((t) => t.name), filter.type, 'All types');
    }
    if (!prev || prev.queues.list !== state.queues.list || prev.jobs.filter !== filter) {
      syncOptions(queueSelect, state.queues.list.map((q) => q.name), filter.queue, 'All queues');
    }
    // Older pages come through the session, so they need it connected.
    loadOlder.disabled = jobs.loadingOlder || state.connection.status !== 'live';
    if (prev && prev.jobs === jobs) return;

    // Rows that left the filter stay, dimmed, until the list is loaded again: they are not
    // among the jobs that match. The count is read a moment after jobs change, so it may lag
    // the rows that match: never fewer than those.
    const shownFilter = { ...filter, q: '' };
    let loaded = 0;
    for (const id of jobs.order) if (matchesFilter(jobs.byId[id], shownFilter)) loaded += 1;
    const count = jobs.count === null ? null : Math.max(jobs.count, loaded);
    setText(summary, count === null ? plural(loaded, 'job') + ' loaded' : `${loaded.toLocaleString()} of ${plural(count, 'job')}`);
    selectMatching.hidden = !count || jobs.allMatching;
    setText(selectMatching.lastChild, count ? ` (${count.toLocaleString()})` : '');

    setText(pauseButton, jobs.paused ? 'Resume live' : 'Pause live');
    setAttr(pauseButton, 'aria-pressed', jobs.paused ? 'true' : 'false');
    pauseButton.classList.toggle('btn-warning', jobs.paused);
    const waiting = Object.keys(jobs.pending).length;
    setText(pendingText, jobs.paused ? (waiting ? `${plural(waiting, 'update')} waiting` : 'Live updates paused') : '');

    const selected = Object.keys(jobs.selected).length;
    bulkBar.hidden = !jobs.allMatching && selected === 0;
    setText(bulkText, jobs.allMatching
      ? `All ${count === null ? '' : count.toLocaleString() + ' '}jobs matching the filter selected`
      : `${plural(selected, 'job')} selected`);

    loadOlder.hidden = !jobs.nextCursor;
    setText(loadOlder, jobs.loadingOlder ? 'Loading…' : 'Load older');
  }

  update(store.getState(), null);
  const unsubscribe = store.subscribe(update);
  return {
    el,
    /** The list's keys: j/k move through rows, Enter opens one, x selects it; true when used. */
    key(key) {
      if (key === 'j') table.moveCursor(1);
      else if (key === 'k') table.moveCursor(-1);
      else if (key === 'Enter') table.openCursor();
      else if (key === 'x') table.toggleCursor();
      else return false;
      return true;
    },
    focusSearch() {
      search.focus();
      search.select();
    },
    destroy() {
      clearTimeout(searchTimer);
      matchingCount.stop();
      chipCountsRead.stop();
      narrow.removeEventListener('change', onWidth);
      unsubscribe();
      table.destroy();
    },
  };
}

function describeFilter(filter) {
  const parts = [];
  if (filter.status.length) parts.push(`status ${filter.status.join(', ')}`);
  if (filter.type) parts.push(`type ${filter.type}`);
  if (filter.queue) parts.push(`queue ${filter.queue}`);
  parts.push(filter.all ? 'child jobs included' : 'root jobs only');
  if (filter.q) parts.push(`search “${filter.q}”`);
  for (const field of ['created', 'finished']) {
    const after = filter[`${field}_after`];
    const before = filter[`${field}_before`];
    if (after || before) {
      const when = (iso) => new Date(iso).toLocaleString();
      parts.push(`${field} ${after ? `from ${when(after)}` : ''}${after && before ? ' ' : ''}${before ? `before ${when(before)}` : ''}`);
    }
  }
  return parts.join('; ');
}

function bulkMessage(action, result) {
  const matched = Number(result.matched) || 0;
  const changed = Number(result.changed) || 0;
  const skipped = Math.max(0, matched - changed);
  if (action === 'cancel') {
    let text = `Cancelled ${plural(changed, 'job')}`;
    if (skipped) text += `; ${skipped.toLocaleString()} ${skipped === 1 ? 'was' : 'were'} already finished`;
    return text;
  }
  let text = `Retried ${plural(changed, 'job')}`;
  if (skipped) text += `; ${skipped.toLocaleString()} ${skipped === 1 ? 'was' : 'were'} not finished`;
  return text;
}

/**
 * `read` run at most one at a time: `refresh()` asks at once (a new filter), `refresh(ms)` only
 * throttles (job changes: a steady stream must not starve the read); asked while a read is in
 * flight, it runs again `busyDelay` ms later. `stop()` ends it for good.
 */
function throttledRead(read, busyDelay) {
  let timer = null;
  let inFlight = false;
  let stopped = false;
  function refresh(delay = 0) {
    if (stopped || (delay > 0 && timer !== null)) return;
    clearTimeout(timer);
    timer = setTimeout(async () => {
      timer = null;
      if (inFlight) {
        refresh(busyDelay);
        return;
      }
      inFlight = true;
      try {
        await read();
      } finally {
        inFlight = false;
      }
    }, delay);
  }
  return {
    refresh,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
