// The queues page: one card per queue (keyed by name, updated in place) with depth, running,
// oldest queued age, outcome counts, pause/resume and a throughput sparkline. Refreshed every
// 2 s while shown, and soon after job changes.

import { api } from '../api.js';
import { h, setAttr, setText } from '../dom.js';
import { bytes, duration, exact, parseTime } from '../format.js';
import { showNotice } from '../store.js';
import { createQueueHistory } from './queue-history.js';
import { createSparkline } from './sparkline.js';

const REFRESH_MS = 2000;

export function createQueues({ store }) {
  const list = h('div', { class: 'queue-grid' });
  const status = h('p', { class: 'muted' }, 'Loading queues…');
  const storage = h('p', { class: 'muted storage', dataset: { testid: 'storage' }, hidden: true });
  const history = createQueueHistory();
  const el = h('main', { class: 'page page-queues', id: 'main' }, h('div', { class: 'page-head' }, h('h1', null, 'Queues')), status, list, storage, history.el);
  const cards = new Map();

  let inFlight = false;
  async function refresh() {
    if (inFlight || document.hidden) return;
    inFlight = true;
    try {
      const answer = await api.queues();
      store.dispatch({ type: 'queues/loaded', queues: answer.queues, storage: answer.storage });
    } catch (error) {
      if (error.status !== 401) store.dispatch({ type: 'queues/failed', error: error.message });
    } finally {
      inFlight = false;
    }
  }

  async function toggle(name, paused) {
    store.dispatch({ type: 'queues/busy', name, busy: true });
    try {
      await (paused ? api.resumeQueue(name) : api.pauseQueue(name));
      await refresh();
    } catch (error) {
      store.dispatch(showNotice('error', `Could not ${paused ? 'resume' : 'pause'} queue ${name}: ${error.message}`));
    } finally {
      store.dispatch({ type: 'queues/busy', name, busy: false });
    }
  }

  function stat(label, extraClass = '', testid = null) {
    const value = h('dd', { class: `stat-value num ${extraClass}`, dataset: { testid } });
    return { value, el: h('div', { class: 'stat' }, h('dt', null, label), value) };
  }

  function createCard(name) {
    const pausedBadge = h('span', { class: 'badge badge-paused' }, 'paused');
    const button = h('button', { type: 'button', class: 'btn btn-small' }, 'Pause');
    button.addEventListener('click', () => {
      const queue = store.getState().queues.list.find((q) => q.name === name);
      if (queue) toggle(name, queue.paused);
    });
    const stats = {
      depth: stat('Depth'),
      running: stat('Running'),
      oldest: stat('Oldest queued', '', 'oldest-queued'),
      succeeded: stat('Succeeded', 'tone-succeeded'),
      failed: stat('Failed', 'tone-failed'),
      cancelled: stat('Cancelled', 'tone-cancelled'),
    };
    const spark = createSparkline({ label: `Jobs finished per 10 s in queue ${name}` });
    const sparkCaption = h('span', { class: 'muted small', dataset: { testid: 'throughput' } });
    const jobsLink = h('a', { href: `/jobs?queue=${encodeURIComponent(name)}`, class: 'small' }, 'Show in list →');
    const el = h(
      'section',
      { class: 'card queue-card', dataset: { testid: `queue-${name}` }, 'aria-label': `Queue ${name}` },
      h('div', { class: 'queue-head' }, h('h2', { class: 'queue-name mono' }, name), pausedBadge, h('span', { class: 'spacer' }), button),
      h('dl', { class: 'stats' }, Object.values(stats).map((s) => s.el)),
      h('div', { class: 'queue-spark' }, spark.el, h('div', { class: 'spark-caption' }, sparkCaption, jobsLink)),
    );
    return { el, pausedBadge, button, stats, spark, sparkCaption, queue: null };
  }

  function updateCard(card, queue, busy, now) {
    card.queue = queue;
    card.pausedBadge.hidden = !queue.paused;
    card.el.classList.toggle('is-paused', queue.paused);
    setText(card.button, queue.paused ? 'Resume' : 'Pause');
    setAttr(card.button, 'aria-label', `${queue.paused ? 'Resume' : 'Pause'} queue ${queue.name}`);
    card.button.disabled = Boolean(busy);
    setText(card.stats.depth.value, String((queue.queued || 0) + (queue.scheduled || 0)));
    setAttr(card.stats.depth.value, 'title', `${queue.queued || 0} queued, ${queue.scheduled || 0} scheduled`);
    setText(card.stats.running.value, `${queue.running || 0} / ${queue.concurrency}`);
    setAttr(card.stats.running.value, 'title', `${queue.running || 0} running of concurrency ${queue.concurrency}`);
    const oldest = parseTime(queue.oldest_queued_at);
    setText(card.stats.oldest.value, oldest === null ? '—' : duration(now - oldest));
    setAttr(card.stats.oldest.value, 'title', queue.oldest_queued_at ? exact(queue.oldest_queued_at) : 'nothing queued');
    setText(card.stats.succeeded.value, (queue.succeeded || 0).toLocaleString());
    setText(card.stats.failed.value, (queue.failed || 0).toLocaleString());
    // Red only when something failed.
    card.stats.failed.value.classList.toggle('tone-failed', (queue.failed || 0) > 0);
    setText(card.stats.cancelled.value, (queue.cancelled || 0).toLocaleString());
    const throughput = queue.throughput;
    if (throughput && Array.isArray(throughput.finished)) {
      const bucket = throughput.bucket_seconds || 10;
      card.spark.update(throughput.finished, bucket);
      const total = throughput.finished.reduce((a, b) => a + (Number(b) || 0), 0);
      const minutes = Math.round((throughput.finished.length * bucket) / 60);
      setText(card.sparkCaption, `${total.toLocaleString()} finished in ${minutes} min`);
    } else {
      card.spark.update([]);
      setText(card.sparkCaption, 'No throughput data');
    }
  }

  function update(state, prev) {
    const queues = state.queues;
    if (prev && prev.queues === queues && prev.user === state.user) return;
    // Every user's jobs wait on a pause: only admins pause and resume.
    const admin = !state.user || state.user.role === 'admin';
    status.hidden = queues.loaded && !queues.error && queues.list.length > 0;
    setText(status, queues.error ? `Could not load queues: ${queues.error}` : queues.loaded ? 'No queues declared.' : 'Loading queues…');
    const now = Date.now();
    const keep = new Set();
    let cursor = list.firstChild;
    for (const queue of queues.list) {
      keep.add(queue.name);
      let card = cards.get(queue.name);
      if (!card) {
        card = createCard(queue.name);
        cards.set(queue.name, card);
      }
      if (card.el === cursor) cursor = cursor.nextSibling;
      else list.insertBefore(card.el, cursor);
      updateCard(card, queue, queues.busy[queue.name], now);
      card.button.hidden = !admin;
    }
    for (const [name, card] of cards) {
      if (!keep.has(name)) {
        card.el.remove();
        cards.delete(name);
      }
    }
    if (queues.loaded) history.setQueues(queues.list.map((queue) => queue.name));
    const kept = queues.storage;
    storage.hidden = !kept;
    if (kept) {
      const share = kept.artifact_limit_bytes ? ` of ${bytes(kept.artifact_limit_bytes)}` : '';
      setText(storage, `Artifacts: ${kept.artifact_files.toLocaleString()} ${kept.artifact_files === 1 ? 'file' : 'files'}, ${bytes(kept.artifact_bytes)}${share} on disk`);
    }
  }

  // Soon after job changes (debounced), and every 2 s.
  let changeTimer = null;
  const unsubscribeSeq = store.subscribe((state, prev) => {
    if (state.lastSeq !== prev.lastSeq && changeTimer === null) {
      changeTimer = setTimeout(() => {
        changeTimer = null;
        refresh();
      }, 500);
    }
  });
  const timer = setInterval(refresh, REFRESH_MS);
  const ageTimer = setInterval(() => {
    const now = Date.now();
    for (const card of cards.values()) {
      if (!card.queue) continue;
      const oldest = parseTime(card.queue.oldest_queued_at);
      setText(card.stats.oldest.value, oldest === null ? '—' : duration(now - oldest));
    }
  }, 1000);
  refresh();
  update(store.getState(), null);
  const unsubscribe = store.subscribe(update);
  return {
    el,
    destroy() {
      clearInterval(timer);
      clearInterval(ageTimer);
      history.destroy();
      clearTimeout(changeTimer);
      unsubscribe();
      unsubscribeSeq();
    },
  };
}
