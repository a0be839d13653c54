// The live jobs table. Rows are keyed by job id and updated in place: a progress tick touches
// one row's cells, a new job inserts one <tr>; thousands of loaded rows cost nothing per update.

import { h, setAttr, setText } from '../dom.js';
import { exact, duration, jobDuration, relative } from '../format.js';
import { matchesFilter } from '../model.js';
import { progressBar, statusBadge, updateProgressBar, updateStatusBadge } from './badges.js';

/** Characters of a job's input shown under its type. */
const PREVIEW_CHARS = 60;

/** A job's input as the text a preview shows (a large input arrives as its preview already). */
function previewText(job) {
  if (job.input === null || job.input === undefined) return '';
  return typeof job.input === 'string' && job.input_truncated ? job.input : JSON.stringify(job.input);
}

export function createJobsTable({ store, navigate }) {
  const rows = new Map(); // id -> row
  // The keyboard's row (j/k or the arrows move it, Enter opens its job, x or Space selects it),
  // and the row whose link is the table's one tab stop.
  let cursorId = null;
  let stopRow = null;
  const running = new Set(); // rows whose duration ticks
  const selectAll = h('input', { type: 'checkbox', 'aria-label': 'Select all loaded jobs', class: 'checkbox' });
  const tbody = h('tbody');
  const emptyCell = h('td', { colspan: '10', class: 'table-empty' });
  // The headers of the columns a list can be sorted by say so (`aria-sort`).
  const attemptHead = h('th', { class: 'col-attempt', scope: 'col' }, 'Attempt');
  const createdHead = h('th', { class: 'col-created', scope: 'col' }, 'Created');
  const durationHead = h('th', { class: 'col-duration', scope: 'col' }, 'Duration');
  const sortedHeads = { attempts: attemptHead, created: createdHead, duration: durationHead };
  const emptyRow = h('tr', { class: 'empty-row' }, emptyCell);
  const table = h(
    'table',
    { class: 'jobs-table', dataset: { testid: 'jobs-table' } },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { class: 'col-check', scope: 'col' }, selectAll),
        h('th', { class: 'col-id', scope: 'col' }, 'ID'),
        h('th', { class: 'col-type', scope: 'col' }, 'Type'),
        h('th', { class: 'col-status', scope: 'col' }, 'Status'),
        h('th', { class: 'col-progress', scope: 'col' }, 'Progress'),
        h('th', { class: 'col-children', scope: 'col' }, 'Children'),
        h('th', { class: 'col-queue', scope: 'col' }, 'Queue'),
        attemptHead,
        createdHead,
        durationHead,
      ),
    ),
    tbody,
  );
  const el = h('div', { class: 'table-scroll' }, table);

  selectAll.addEventListener('change', () => {
    const { jobs } = store.getState();
    if (selectAll.checked) store.dispatch({ type: 'jobs/select', ids: jobs.order, on: true });
    else store.dispatch({ type: 'jobs/select-none' });
  });

  tbody.addEventListener('change', (event) => {
    const box = event.target;
    if (!box.matches('input[type=checkbox]')) return;
    const tr = box.closest('tr');
    const { jobs } = store.getState();
    if (jobs.allMatching) {
      // Unticking one row leaves "all matching" for an explicit selection of the loaded rows.
      store.dispatch({ type: 'jobs/select', ids: jobs.order, on: true });
    }
    store.dispatch({ type: 'jobs/select', ids: [tr.dataset.jobId], on: box.checked });
  });

  tbody.addEventListener('click', (event) => {
    const tr = event.target.closest('tr[data-job-id]');
    if (!tr) return;
    if (event.target.closest('input, a, button, label, .col-check')) return;
    if (window.getSelection && String(window.getSelection()).length) return; // selecting text
    navigate(`/jobs/${tr.dataset.jobId}`);
  });

  function createRow(id) {
    // One tab stop for the whole table: the keyboard row's link (see `tabStop`); the arrows,
    // j/k, Space or x and Enter do the rest.
    const check = h('input', { type: 'checkbox', class: 'checkbox', tabindex: '-1', 'aria-label': `Select job ${id}` });
    const link = h('a', { href: `/jobs/${id}`, class: 'mono id-link', tabindex: '-1', 'aria-label': `Job ${id}` }, id);
    const typeName = h('span', { class: 'type-name' });
    const preview = h('span', { class: 'input-preview mono', dataset: { testid: 'preview' } });
    const type = h('td', { class: 'col-type' }, typeName, preview);
    const badge = statusBadge('');
    const bar = progressBar();
    const progressText = h('span', { class: 'progress-text' });
    const children = h('td', { class: 'col-children num' });
    const queue = h('td', { class: 'col-queue' });
    const attempt = h('td', { class: 'col-attempt num' });
    const created = h('td', { class: 'col-created' });
    const durationCell = h('td', { class: 'col-duration num' });
    const tr = h(
      'tr',
      { dataset: { jobId: id } },
      h('td', { class: 'col-check' }, check),
      h('td', { class: 'col-id' }, link),
      type,
      h('td', { class: 'col-status' }, badge),
      h('td', { class: 'col-progress' }, h('span', { class: 'progress-cell' }, bar, progressText)),
      children,
      queue,
      attempt,
      created,
      durationCell,
    );
    return { id, tr, check, link, type, typeName, preview, badge, bar, progressText, children, queue, attempt, created, duration: durationCell, job: null, stale: null };
  }

  /**
   * The start of the input, or, under a search that matched inside it, the part around the
   * match with the match marked: why the row is listed.
   */
  function showPreview(row, input, q) {
    const needle = (q || '').trim().toLowerCase();
    const at = needle && !/^\d+$/.test(needle) ? input.toLowerCase().indexOf(needle) : -1;
    const key = `${input}\u0000${at < 0 ? '' : needle}`;
    if (row.previewKey === key) return;
    row.previewKey = key;
    if (at < 0) {
      const shown = input.length > PREVIEW_CHARS ? `${input.slice(0, PREVIEW_CHARS)}…` : input;
      row.preview.replaceChildren(shown === '{}' || shown === 'null' ? '' : shown);
    } else {
      const from = Math.max(0, at - 20);
      const to = Math.min(input.length, at + needle.length + 30);
      row.preview.replaceChildren(
        from > 0 ? '…' : '',
        input.slice(from, at),
        h('mark', null, input.slice(at, at + needle.length)),
        input.slice(at + needle.length, to),
        to < input.length ? '…' : '',
      );
    }
    setAttr(row.preview, 'title', input ? input.slice(0, 1000) : null);
  }

  function updateRow(row, job, now) {
    row.job = job;
    setText(row.typeName, job.type);
    setAttr(row.typeName, 'title', job.type);
    // A glance at what the job was given: the start of its input's JSON.
    showPreview(row, previewText(job), store.getState().jobs.filter.q);
    updateStatusBadge(row.badge, job.status);
    updateProgressBar(row.bar, job);
    const fraction = job.progress && job.status !== 'succeeded' ? Math.round((Number(job.progress.fraction) || 0) * 100) : null;
    setText(row.progressText, fraction === null ? '' : `${fraction}%`);
    updateChildren(row.children, job);
    setText(row.queue, job.queue);
    setText(row.attempt, `${job.phase === 'join' ? job.phase_attempt : job.attempt}/${job.max_attempts}`);
    setText(row.created, relative(job.created_at, now));
    setAttr(row.created, 'title', exact(job.created_at));
    tickDuration(row, now);
    if (job.status === 'running') running.add(row);
    else running.delete(row);
  }

  /** "finished/total" children, a link to the tree on the job's page; empty without any. */
  function updateChildren(cell, job) {
    const counts = job.children;
    const total = counts ? counts.total : 0;
    if (!total) {
      if (cell.firstChild) cell.replaceChildren();
      return;
    }
    const text = `${total - counts.unfinished}/${total}`;
    const label = `${total - counts.unfinished} of ${total} children finished${counts.failed + counts.cancelled ? `, ${counts.failed + counts.cancelled} did not succeed` : ''}`;
    let link = cell.firstChild;
    if (!link) {
      link = h('a', { href: `/jobs/${job.id}#tree`, class: 'children-link' });
      cell.appendChild(link);
    }
    setText(link, text);
    setAttr(link, 'title', label);
    setAttr(link, 'aria-label', label);
  }

  function tickDuration(row, now) {
    const ms = jobDuration(row.job, now);
    setText(row.duration, ms === null ? '—' : duration(ms));
    if (row.job.status === 'running' && row.job.started_at) setAttr(row.duration, 'title', `running since ${exact(row.job.started_at)}`);
    else setAttr(row.duration, 'title', null);
  }

  let lastOrder = null;
  let lastFilter = null;
  let lastSelected = null;
  let lastAllMatching = null;
  let lastById = null;
  function update(state, prev) {
    const jobs = state.jobs;
    if (prev && prev.timesRevision !== state.timesRevision) {
      const now = Date.now();
      for (const row of rows.values()) if (row.job) setText(row.created, relative(row.job.created_at, now));
    }
    if (prev && prev.jobs === jobs) return;
    const now = Date.now();
    const orderChanged = jobs.order !== lastOrder;
    if (orderChanged) {
      const keep = new Set(jobs.order);
      for (const [id, row] of rows) {
        if (!keep.has(id)) {
          row.tr.remove();
          rows.delete(id);
          running.delete(row);
        }
      }
      if (emptyRow.parentNode) emptyRow.remove();
      let cursor = tbody.firstChild;
      for (const id of jobs.order) {
        let row = rows.get(id);
        if (!row) {
          row = createRow(id);
          rows.set(id, row);
        }
        if (row.tr === cursor) cursor = cursor.nextSibling;
        else tbody.insertBefore(row.tr, cursor);
      }
      lastOrder = jobs.order;
      tabStop();
    }
    if (!jobs.order.length) {
      const f = jobs.filter;
      const unfiltered = !f.status.length && !f.type && !f.queue && !f.q;
      emptyCell.replaceChildren(
        ...(!jobs.loaded
          ? ['Loading jobs…']
          : jobs.error
            ? [`Could not load jobs: ${jobs.error}`]
            : unfiltered
              ? [
                h('strong', null, 'No jobs yet. '),
                'Submit one with ',
                h('a', { href: '/submit' }, 'the form'),
                ', or from a terminal: ',
                h('code', null, 'runway add -- echo hello'),
              ]
              : ['No jobs match this filter.']),
      );
      tbody.appendChild(emptyRow);
    }
    const filterChanged = jobs.filter !== lastFilter;
    lastFilter = jobs.filter;
    const selectionChanged = orderChanged || jobs.selected !== lastSelected || jobs.allMatching !== lastAllMatching;
    lastSelected = jobs.selected;
    lastAllMatching = jobs.allMatching;
    if (!orderChanged && !filterChanged && !selectionChanged && jobs.byId === lastById) return;
    lastById = jobs.byId;
    for (const id of jobs.order) {
      const row = rows.get(id);
      const job = jobs.byId[id];
      const changed = row.job !== job;
      if (changed) updateRow(row, job, now);
      if (!selectionChanged && !changed && !filterChanged) continue;
      if (filterChanged && row.job) showPreview(row, previewText(row.job), jobs.filter.q);
      if (changed || filterChanged) {
        // Type, queue and input never change, so only the status can take a job out of the filter.
        const stale = !matchesFilter(job, { ...jobs.filter, q: '' });
        if (stale !== row.stale) {
          row.stale = stale;
          row.tr.classList.toggle('row-stale', stale);
          setAttr(row.tr, 'title', stale ? 'No longer matches the filter' : null);
        }
      }
      const checked = jobs.allMatching || Boolean(jobs.selected[id]);
      if (row.check.checked !== checked) row.check.checked = checked;
      row.tr.classList.toggle('row-selected', checked);
    }
    const selectedCount = Object.keys(jobs.selected).length;
    selectAll.checked = jobs.order.length > 0 && (jobs.allMatching || selectedCount >= jobs.order.length);
    selectAll.indeterminate = !selectAll.checked && selectedCount > 0;
  }

  let ticks = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    for (const row of running) tickDuration(row, now);
    ticks += 1;
    if (ticks % 10 === 0) for (const row of rows.values()) if (row.job) setText(row.created, relative(row.job.created_at, now));
  }, 1000);

  update(store.getState(), null);
  const unsubscribe = store.subscribe(update);
  function setCursor(id) {
    const old = cursorId && rows.get(cursorId);
    if (old) old.tr.classList.remove('row-cursor');
    cursorId = id;
    const row = id && rows.get(id);
    tabStop();
    if (!row) return;
    row.tr.classList.add('row-cursor');
    row.tr.scrollIntoView({ block: 'nearest' });
  }

  /** The table's one tab stop: the keyboard row's link, or the first row's. */
  function tabStop() {
    const row = (cursorId && rows.get(cursorId)) || rows.get(store.getState().jobs.order[0]);
    if (row === stopRow) return;
    if (stopRow) setAttr(stopRow.link, 'tabindex', '-1');
    stopRow = row || null;
    if (stopRow) setAttr(stopRow.link, 'tabindex', '0');
  }

  /** Moves the keyboard's row by `by` (from the first row when there is none); focus follows
   * when it is in the table. */
  function moveCursor(by) {
    const order = store.getState().jobs.order;
    if (!order.length) return;
    const at = cursorId ? order.indexOf(cursorId) : -1;
    const next = at < 0 ? 0 : Math.min(order.length - 1, Math.max(0, at + by));
    const inTable = tbody.contains(document.activeElement);
    setCursor(order[next]);
    if (inTable) rows.get(order[next]).link.focus();
  }

  tbody.addEventListener('focusin', (event) => {
    const tr = event.target.closest('tr[data-job-id]');
    if (tr && tr.dataset.jobId !== cursorId) setCursor(tr.dataset.jobId);
  });
  tbody.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      moveCursor(event.key === 'ArrowDown' ? 1 : -1);
    } else if (event.key === ' ' && event.target.matches('a.id-link')) {
      event.preventDefault();
      toggleCursor();
    }
  });

  function toggleCursor() {
    const row = cursorId && rows.get(cursorId);
    if (!row) return;
    const on = !row.check.checked;
    row.check.checked = on;
    row.check.dispatchEvent(new Event('change', { bubbles: true }));
  }

  return {
    el,
    moveCursor,
    /** Marks the header of the column the list is sorted by, if it has one. */
    showSort(filter) {
      for (const [sort, head] of Object.entries(sortedHeads)) {
        if (sort === filter.sort) setAttr(head, 'aria-sort', filter.order === 'asc' ? 'ascending' : 'descending');
        else head.removeAttribute('aria-sort');
      }
    },
    openCursor() {
      if (cursorId && rows.has(cursorId)) navigate(`/jobs/${cursorId}`);
    },
    toggleCursor,
    destroy() {
      clearInterval(timer);
      unsubscribe();
    },
  };
}
