// The children of the job on the detail page: the tree's overall progress and one row per
// child (status, progress, duration, a link to it), oldest first. Rows come a page of 100 at a
// time ("Show more"), so a parent of 10,000 children never puts 10,000 rows in the page; the
// rows held are kept live by the `children` subscription.

import { api } from '../api.js';
import { h, setText } from '../dom.js';
import { duration, jobDuration } from '../format.js';
import { progressBar, statusBadge, updateProgressBar, updateStatusBadge } from './badges.js';

export function createJobTree({ store }) {
  const summary = h('span', { class: 'muted small', dataset: { testid: 'tree-summary' } });
  const overall = progressBar();
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'jobs-table tree-table', dataset: { testid: 'tree' } },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'ID'),
      h('th', { scope: 'col' }, 'Key'),
      h('th', { scope: 'col' }, 'Type'),
      h('th', { scope: 'col' }, 'Status'),
      h('th', { scope: 'col' }, 'Progress'),
      h('th', { scope: 'col' }, 'Duration'),
      h('th', { scope: 'col' }, 'Children'))),
    tbody,
  );
  const more = h('button', { type: 'button', class: 'btn btn-small', onclick: () => loadMore() }, 'Show more');
  const message = h('p', { class: 'muted' });
  const el = h(
    'section',
    { class: 'card', id: 'tree', hidden: true, 'aria-label': 'Children' },
    h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, 'Children'), summary),
    h('div', { class: 'tree-progress' }, overall),
    message,
    h('div', { class: 'table-scroll' }, table),
    h('div', { class: 'list-footer' }, more),
  );

  const rows = new Map();
  function row(id) {
    let held = rows.get(id);
    if (held) return held;
    const badge = statusBadge('');
    const bar = progressBar();
    const cells = {
      key: h('td', { class: 'mono' }),
      type: h('td'),
      duration: h('td', { class: 'num' }),
      children: h('td', { class: 'num' }),
    };
    const tr = h('tr', { dataset: { jobId: id } },
      h('td', null, h('a', { href: `/jobs/${id}`, class: 'mono id-link' }, id)),
      cells.key, cells.type, h('td', null, badge), h('td', null, bar), cells.duration, cells.children);
    held = { tr, badge, bar, cells, job: null };
    rows.set(id, held);
    return held;
  }

  function render(tree, job, now) {
    const counts = job && job.children;
    const total = counts ? counts.total : 0;
    el.hidden = !total && !tree.order.length;
    if (el.hidden) return;
    const done = total - (counts ? counts.unfinished : 0);
    const unsuccessful = counts ? counts.failed + counts.cancelled : 0;
    setText(summary, `${done} of ${total} finished${counts && counts.succeeded ? ` · ${counts.succeeded} succeeded` : ''}${unsuccessful ? ` · ${unsuccessful} did not succeed` : ''}`);
    updateProgressBar(overall, {
      status: total && done === total ? 'succeeded' : 'running',
      progress: { fraction: total ? done / total : 0, message: `${done} of ${total} children finished` },
    });
    setText(message, tree.error ? `Could not load the children: ${tree.error}` : tree.loaded ? '' : 'Loading children…');
    message.hidden = !tree.error && tree.loaded;
    let cursor = tbody.firstChild;
    for (const id of tree.order) {
      const child = tree.byId[id];
      const held = row(id);
      if (held.job !== child) {
        held.job = child;
        setText(held.cells.key, child.key || '');
        setText(held.cells.type, child.type);
        updateStatusBadge(held.badge, child.status);
        updateProgressBar(held.bar, child);
        const grand = child.children;
        setText(held.cells.children, grand && grand.total ? `${grand.total - grand.unfinished}/${grand.total}` : '');
      }
      tickRow(held, now);
      if (held.tr === cursor) cursor = cursor.nextSibling;
      else tbody.insertBefore(held.tr, cursor);
    }
    const shown = tree.order.length;
    more.hidden = !tree.nextCursor;
    more.disabled = tree.loadingMore;
    setText(more, tree.loadingMore ? 'Loading…' : `Show more (${Math.max(0, total - shown)} more)`);
  }

  function tickRow(held, now) {
    const ms = jobDuration(held.job, now);
    setText(held.cells.duration, ms === null ? '—' : duration(ms));
  }

  async function loadMore() {
    const { tree } = store.getState();
    if (!tree.nextCursor || tree.loadingMore) return;
    store.dispatch({ type: 'tree/loading-more', id: tree.id });
    try {
      const page = await api.tree(tree.id, tree.nextCursor, 100);
      store.dispatch({ type: 'tree/loaded', id: tree.id, more: true, children: page.children, nextCursor: page.next_cursor ?? null });
    } catch (error) {
      store.dispatch({ type: 'tree/failed', id: tree.id, error: error.message });
    }
  }

  let lastTree = null;
  function update(state, prev) {
    if (prev && prev.tree === state.tree && prev.detail.job === state.detail.job) return;
    if (state.tree.id !== (lastTree && lastTree.id)) {
      tbody.replaceChildren();
      rows.clear();
    }
    lastTree = state.tree;
    render(state.tree, state.detail.job, Date.now());
  }

  const timer = setInterval(() => {
    const now = Date.now();
    for (const held of rows.values()) if (held.job && held.job.status === 'running') tickRow(held, now);
  }, 1000);
  update(store.getState(), null);
  const unsubscribe = store.subscribe(update);
  return {
    el,
    destroy() {
      clearInterval(timer);
      unsubscribe();
    },
  };
}

/** The way from the tree's root to the job: `Job 3 (blogcast) › Job 8 (tts)`. */
export function breadcrumb(ancestors) {
  if (!ancestors || !ancestors.length) return null;
  const parts = [];
  for (const job of ancestors) {
    parts.push(h('a', { href: `/jobs/${job.id}`, class: 'mono' }, `Job ${job.id}`), h('span', { class: 'muted' }, ` (${job.type})`), h('span', { class: 'crumb-sep', 'aria-hidden': 'true' }, ' › '));
  }
  return h('nav', { class: 'breadcrumb', 'aria-label': 'Parent jobs', dataset: { testid: 'breadcrumb' } }, parts);
}
