// The job detail page: header, progress, error, input/output trees, live log and timeline.
// Everything from the job is rendered as text.

import { api } from '../api.js';
import { h, replaceChildren, setAttr, setText } from '../dom.js';
import { bytes, clockTime, duration, exact, jobDuration, relative } from '../format.js';
import { isFinished } from '../model.js';
import { showNotice } from '../store.js';
import { copyJsonButton, jsonView } from './json-view.js';
import { createArtifacts } from './artifacts.js';
import { progressBar, statusBadge, updateProgressBar, updateStatusBadge } from './badges.js';
import { confirmDialog } from './dialog.js';
import { breadcrumb, createJobTree } from './job-tree.js';

/** Most matches "Find in log" marks; the count says when there are more. */
const MAX_MATCHES = 1000;

export function createJobDetail({ store, navigate }) {
  const tree = createJobTree({ store });
  const artifacts = createArtifacts({ store });
  const crumbs = h('div', { class: 'crumbs' });
  const title = h('h1', { class: 'detail-title' });
  const typeLabel = h('span', { class: 'detail-type mono' });
  const badge = statusBadge('');
  const cancelButton = h('button', { type: 'button', class: 'btn btn-danger-ghost', onclick: () => cancel() }, 'Cancel job');
  const retryButton = h('button', { type: 'button', class: 'btn btn-primary', onclick: () => retry() }, 'Retry');
  const againButton = h('button', { type: 'button', class: 'btn', onclick: () => navigate(`/submit?from=${encodeURIComponent(store.getState().detail.id)}`) }, 'Run again with edited input');
  const deleteButton = h('button', { type: 'button', class: 'btn btn-danger-ghost', onclick: () => remove() }, 'Delete');

  const meta = {};
  const metaList = h('dl', { class: 'meta' });
  for (const [key, label] of [
    ['queue', 'Queue'], ['attempt', 'Attempt'], ['priority', 'Priority'], ['created', 'Created'], ['runs', 'Runs'], ['started', 'Started'],
    ['finished', 'Finished'], ['duration', 'Duration'], ['worker', 'Worker'], ['retry_of', 'Retry of'], ['retries', 'Retried as'], ['parent', 'Parent'],
    ['key', 'Key'], ['trigger', 'Started by trigger'], ['owner', 'Owner'],
  ]) {
    const dd = h('dd');
    const wrapper = h('div', { class: 'meta-item' }, h('dt', null, label), dd);
    meta[key] = { dd, wrapper };
    metaList.appendChild(wrapper);
  }
  meta.retries.wrapper.hidden = true;

  const bar = progressBar();
  const progressMessage = h('span', { class: 'progress-message' });
  const progressPercent = h('span', { class: 'progress-percent num' });
  const progressRow = h('div', { class: 'detail-progress' }, bar, progressPercent, progressMessage);

  const errorText = h('pre', { class: 'error-text', dataset: { testid: 'error' } });
  const errorBox = h('section', { class: 'error-box', hidden: true, 'aria-label': 'Error' }, h('h2', { class: 'card-title' }, 'Error'), errorText);

  const inputBody = h('div', { class: 'card-body', dataset: { testid: 'input' } });
  const outputBody = h('div', { class: 'card-body', dataset: { testid: 'output' } });

  // Log
  const logPre = h('pre', { class: 'log mono', dataset: { testid: 'log' }, tabindex: '0', 'aria-label': 'Log' });
  const logSize = h('span', { class: 'muted small' });
  const followButton = h('button', { type: 'button', class: 'btn btn-small', 'aria-pressed': 'true', onclick: () => setFollow(!following) }, 'Pause');
  const wrapButton = h('button', { type: 'button', class: 'btn btn-small', 'aria-pressed': 'true', onclick: () => {
    const wrap = !logPre.classList.toggle('log-nowrap');
    setAttr(wrapButton, 'aria-pressed', wrap ? 'true' : 'false');
  } }, 'Wrap');
  const downloadButton = h('button', { type: 'button', class: 'btn btn-small', onclick: () => downloadLog() }, 'Download');
  const timesButton = h('button', { type: 'button', class: 'btn btn-small', 'aria-pressed': 'false', 'aria-label': 'Times in the log', onclick: () => {
    const on = logPre.classList.toggle('log-times');
    setAttr(timesButton, 'aria-pressed', on ? 'true' : 'false');
  } }, 'Times');
  const logFind = h('input', {
    type: 'search', class: 'input log-find', placeholder: 'Find in log', 'aria-label': 'Find in log',
    autocomplete: 'off', spellcheck: 'false',
  });
  const logFindCount = h('span', { class: 'muted small log-find-count', role: 'status' });
  logFind.addEventListener('input', () => findInLog(0));
  logFind.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      findInLog(event.shiftKey ? -1 : 1);
    }
  });
  const logEmpty = h('p', { class: 'muted log-empty' }, 'No log output yet.');
  let following = true;
  let renderedLength = 0;
  // The log as parts: a part per mark (attempt, stream, time), each attempt opened by a marker.
  let renderedMarks = 0;
  let openPart = null;
  let lastAttempt = null;
  const attemptMarkers = new Map(); // attempt -> element whose outcome shows the attempt's end
  let matches = [];
  let currentMatch = -1;
  let programmaticScroll = false;
  logPre.addEventListener('scroll', () => {
    if (programmaticScroll) {
      programmaticScroll = false;
      return;
    }
    const atBottom = logPre.scrollHeight - logPre.scrollTop - logPre.clientHeight < 8;
    if (following && !atBottom) setFollow(false);
    else if (!following && atBottom) setFollow(true);
  });
  function setFollow(on) {
    following = on;
    setText(followButton, on ? 'Pause' : 'Follow');
    setAttr(followButton, 'aria-pressed', on ? 'true' : 'false');
    if (on) scrollToEnd();
  }
  function scrollToEnd() {
    if (logPre.scrollTop + logPre.clientHeight < logPre.scrollHeight) {
      programmaticScroll = true;
      logPre.scrollTop = logPre.scrollHeight;
    }
  }

  const timeline = h('ol', { class: 'timeline', dataset: { testid: 'timeline' } });
  const timelineEmpty = h('p', { class: 'muted' }, 'Loading events…');

  const notFound = h('div', { class: 'empty-state', hidden: true });
  // The heading shows from the start (focus lands on it after navigation); the rest of the
  // head waits for the job.
  const actions = h('div', { class: 'detail-actions', hidden: true }, cancelButton, retryButton, againButton, deleteButton);
  const head = h('div', { class: 'detail-head' }, h('div', { class: 'detail-heading' }, title, badge, typeLabel), actions);
  const content = h(
    'div',
    { class: 'detail-content', hidden: true },
    h('section', { class: 'card' }, metaList, progressRow),
    errorBox,
    tree.el,
    artifacts.el,
    h('div', { class: 'grid-2' },
      h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, 'Input'),
        copyJsonButton(() => shownInput(store.getState().detail))), inputBody),
      h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, 'Output'),
        copyJsonButton(() => (store.getState().detail.job || {}).output ?? null)), outputBody)),
    h('div', { class: 'grid-log' },
      h('section', { class: 'card card-log' },
        h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, 'Log'), h('div', { class: 'card-head-end' }, logSize, timesButton, wrapButton, downloadButton, followButton)),
        h('div', { class: 'log-tools' }, logFind, logFindCount),
        logEmpty, logPre),
      h('section', { class: 'card' }, h('h2', { class: 'card-title' }, 'Timeline'), timelineEmpty, timeline)),
  );
  const el = h(
    'main',
    { class: 'page page-detail', id: 'main', dataset: { testid: 'job-detail' } },
    h('a', { href: '/jobs', class: 'back-link' }, '← Back to the list'),
    crumbs,
    head,
    notFound,
    content,
  );

  /** The whole stored log as a file, read a megabyte at a time. */
  async function downloadLog() {
    const id = store.getState().detail.id;
    downloadButton.disabled = true;
    try {
      const parts = [];
      let offset = 0;
      for (let pages = 0; pages < 256; pages++) {
        const chunk = await api.log(id, offset, 1048576);
        parts.push(chunk.data);
        if (chunk.next_offset === offset || chunk.complete || !chunk.data) break;
        offset = chunk.next_offset;
      }
      const url = URL.createObjectURL(new Blob(parts, { type: 'text/plain' }));
      const link = h('a', { href: url, download: `job-${id}.log`, hidden: true });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      store.dispatch(showNotice('error', `Could not download the log of job ${id}: ${error.message}`));
    } finally {
      downloadButton.disabled = false;
    }
  }

  let cancelBusy = false;
  async function cancel() {
    const { id, job: current } = store.getState().detail;
    const running = current && current.status === 'running';
    const ok = await confirmDialog({
      title: `Cancel job ${id}?`,
      body: running
        ? 'Its process is stopped: SIGTERM now, SIGKILL after the grace period.'
        : 'It will not run.',
      confirmLabel: 'Cancel the job',
      danger: true,
    });
    if (!ok) return;
    cancelBusy = true;
    cancelButton.disabled = true;
    try {
      // The job's new state arrives over the session; the REST answer may be older than it.
      const result = await api.cancel(id);
      store.dispatch(showNotice('success', result && result.stopping ? `Stopping job ${id}…` : `Cancelled job ${id}`));
    } catch (error) {
      store.dispatch(showNotice('error', `Could not cancel job ${id}: ${error.message}`));
    } finally {
      cancelBusy = false;
      const job = store.getState().detail.job;
      cancelButton.disabled = Boolean(job && job.cancel_requested && !isFinished(job));
    }
  }

  async function retry() {
    const id = store.getState().detail.id;
    retryButton.disabled = true;
    try {
      const job = await api.retry(id);
      store.dispatch(showNotice('success', `Job ${job.id} re-runs job ${id}`));
      navigate(`/jobs/${job.id}`);
    } catch (error) {
      store.dispatch(showNotice('error', `Could not retry job ${id}: ${error.message}`));
    } finally {
      retryButton.disabled = false;
    }
  }

  async function remove() {
    const id = store.getState().detail.id;
    const job = store.getState().detail.job;
    const total = job && job.children ? job.children.total : 0;
    const ok = await confirmDialog({
      title: `Delete job ${id}?`,
      body: h('p', null, total
        ? `The job and its ${total} children go, with their logs, events and artifacts. This cannot be undone.`
        : 'The job goes with its log, events and artifacts. This cannot be undone.'),
      confirmLabel: 'Delete the job for good',
      danger: true,
    });
    if (!ok) return;
    deleteButton.disabled = true;
    try {
      const result = await api.remove(id);
      store.dispatch(showNotice('success', `Deleted job ${id}${result.deleted > 1 ? ` and ${result.deleted - 1} descendants` : ''}`));
      navigate('/jobs');
    } catch (error) {
      store.dispatch(showNotice('error', `Could not delete job ${id}: ${error.message}`));
    } finally {
      deleteButton.disabled = false;
    }
  }

  let inputText = null;
  let outputText = null;

  /** The whole input once read over REST; until then what the live message carries. */
  function shownInput(detail) {
    if (detail.wholeInput !== undefined) return detail.wholeInput;
    return (detail.job || {}).input ?? null;
  }

  function renderJob(job, now, detail) {
    setText(title, `Job ${job.id}`);
    setText(typeLabel, job.type);
    updateStatusBadge(badge, job.status);
    const finished = isFinished(job);
    cancelButton.hidden = finished;
    // A job inside a tree is retried and deleted with its root.
    retryButton.hidden = !finished || Boolean(job.parent);
    deleteButton.hidden = !finished || Boolean(job.parent);
    const stopping = Boolean(job.cancel_requested) && !finished;
    cancelButton.disabled = cancelBusy || stopping;
    setAttr(cancelButton, 'title', stopping ? 'Cancel requested; the job is stopping' : null);

    // Each action's name says which job it acts on.
    setAttr(cancelButton, 'aria-label', `Cancel job ${job.id}`);
    setAttr(retryButton, 'aria-label', `Retry job ${job.id}`);
    setAttr(deleteButton, 'aria-label', `Delete job ${job.id}`);
    setAttr(againButton, 'aria-label', `Run again with edited input: job ${job.id}`);
    setText(meta.queue.dd, job.queue);
    // A join has attempts of its own: the count shown is the current phase's.
    const attempt = job.phase === 'join' ? job.phase_attempt : job.attempt;
    setText(meta.attempt.dd, `${attempt}/${job.max_attempts}${job.phase === 'join' ? ' (join)' : ''}`);
    setText(meta.priority.dd, String(job.priority ?? 0));
    timeCell(meta.created, job.created_at, now);
    // A scheduled job (first run later, or backing off before its next attempt) says when.
    const later = job.status === 'scheduled' && job.run_at && Date.parse(job.run_at) > now;
    meta.runs.wrapper.hidden = !later;
    if (later) {
      setText(meta.runs.dd, `${exact(job.run_at)} (in ${duration(Date.parse(job.run_at) - now)})`);
      setAttr(meta.runs.dd, 'data-testid', 'runs-at');
    }
    timeCell(meta.started, job.started_at, now);
    timeCell(meta.finished, job.finished_at, now);
    tick(now);
    setText(meta.worker.dd, job.worker || '—');
    meta.worker.wrapper.hidden = !job.worker;
    linkCell(meta.retry_of, job.retry_of);
    loadRetries(job);
    linkCell(meta.parent, job.parent);
    setText(meta.key.dd, job.key || '');
    meta.key.wrapper.hidden = !job.key;
    // Members see only their own jobs; admins see whose each one is.
    const user = store.getState().user;
    setText(meta.owner.dd, job.owner || '');
    meta.owner.wrapper.hidden = !(job.owner && user && user.role === 'admin');
    meta.trigger.wrapper.hidden = !job.trigger;
    if (job.trigger) {
      const link = meta.trigger.dd.firstChild;
      if (!link || link.dataset.trigger !== job.trigger) {
        replaceChildren(meta.trigger.dd, h('a', { href: '/triggers', class: 'mono', dataset: { trigger: job.trigger, testid: 'trigger' } }, job.trigger));
      }
    }

    updateProgressBar(bar, job);
    const fraction = job.status === 'succeeded' ? 100 : job.progress ? Math.round((Number(job.progress.fraction) || 0) * 100) : null;
    setText(progressPercent, fraction === null ? '—' : `${fraction}%`);
    setText(progressMessage, job.progress && job.progress.message ? job.progress.message : '');

    errorBox.hidden = !job.error;
    setText(errorText, job.error || '');

    const input = shownInput(detail);
    const preview = Boolean(job.input_truncated) && detail.wholeInput === undefined;
    const nextInput = JSON.stringify([preview, input]);
    if (nextInput !== inputText) {
      inputText = nextInput;
      replaceChildren(inputBody,
        preview ? h('p', { class: 'muted' }, 'A preview of a large input; loading the whole…') : null,
        jsonView(input, { label: 'Input' }));
    }
    // The note for a missing output changes when the job ends, though the output did not.
    const nextOutput = JSON.stringify([finished, job.output ?? null]);
    if (nextOutput !== outputText) {
      outputText = nextOutput;
      if (job.output === null || job.output === undefined) {
        replaceChildren(outputBody, h('p', { class: 'muted' }, finished ? 'No output.' : 'No output yet.'));
      } else {
        replaceChildren(outputBody, jsonView(job.output, { label: 'Output' }));
      }
    }
  }

  function timeCell(item, value, now) {
    item.wrapper.hidden = !value;
    setText(item.dd, value ? relative(value, now) : '—');
    setAttr(item.dd, 'title', value ? exact(value) : null);
  }

  // The jobs that ran this one again, newest first, read when the page opens and whenever the
  // job's status changes (a retry needs it finished).
  let retriesFor = null;
  function loadRetries(job) {
    const key = `${job.id}|${job.status}`;
    if (retriesFor === key) return;
    retriesFor = key;
    if (!isFinished(job)) {
      meta.retries.wrapper.hidden = true;
      return;
    }
    api.retries(job.id).then((page) => {
      if (retriesFor !== key) return;
      const ids = page.jobs.map((retry) => retry.id);
      meta.retries.wrapper.hidden = !ids.length;
      replaceChildren(meta.retries.dd, ids.flatMap((id, index) => [
        index ? ', ' : '',
        h('a', { href: `/jobs/${id}`, class: 'mono' }, `#${id}`),
      ]), page.next_cursor ? ' and more' : '');
    }, () => {
      meta.retries.wrapper.hidden = true;
    });
  }

  function linkCell(item, id) {
    item.wrapper.hidden = !id;
    if (!id) return;
    const link = item.dd.firstChild;
    if (!link || link.dataset.id !== id) replaceChildren(item.dd, h('a', { href: `/jobs/${id}`, class: 'mono', dataset: { id } }, `#${id}`));
  }

  function tick(now = Date.now()) {
    const job = store.getState().detail.job;
    if (!job) return;
    const ms = jobDuration(job, now);
    setText(meta.duration.dd, ms === null ? '—' : duration(ms));
    meta.duration.wrapper.hidden = ms === null;
  }

  function resetLog() {
    logPre.replaceChildren();
    renderedLength = 0;
    renderedMarks = 0;
    openPart = null;
    lastAttempt = null;
    attemptMarkers.clear();
  }

  /** Opens the part of the log a mark begins, after its attempt's marker if it is a new one. */
  function openMark(mark) {
    if (mark.attempt && mark.attempt !== lastAttempt) {
      lastAttempt = mark.attempt;
      const outcome = h('span', { class: 'log-attempt-outcome' });
      const marker = h('span', { class: 'log-attempt', dataset: { attempt: String(mark.attempt) } },
        `Attempt ${mark.attempt}`, outcome);
      attemptMarkers.set(mark.attempt, outcome);
      logPre.appendChild(marker);
    }
    if (mark.at) logPre.appendChild(h('span', { class: 'log-time', title: exact(mark.at) }, clockTime(mark.at)));
    openPart = h('span', { class: `log-part log-${mark.stream}`, dataset: { stream: mark.stream } });
    logPre.appendChild(openPart);
  }

  function renderLog(detail) {
    const log = detail.log;
    if (log.text.length < renderedLength) resetLog();
    if (log.text.length > renderedLength) {
      let from = renderedLength;
      while (from < log.text.length) {
        const next = log.marks[renderedMarks];
        if (next && next.index <= from) {
          openMark(next);
          renderedMarks += 1;
          continue;
        }
        const to = next ? Math.min(next.index, log.text.length) : log.text.length;
        (openPart || logPre).appendChild(document.createTextNode(log.text.slice(from, to)));
        from = to;
      }
      renderedLength = log.text.length;
      if (openPart && openPart.childNodes.length > 200) openPart.normalize();
      if (following) scrollToEnd();
      if (logFind.value) findInLog(0, false);
    }
    const size = Math.max(log.end, detail.job ? detail.job.log_size || 0 : 0);
    setText(logSize, bytes(size));
    logEmpty.hidden = log.text.length > 0;
    logPre.hidden = log.text.length === 0;
  }

  /** How each attempt ended, from the timeline, on its marker in the log. */
  function showAttemptOutcomes(events) {
    if (!attemptMarkers.size) return;
    const ends = new Map();
    for (const event of events) {
      const attempt = event.data && event.data.attempt;
      if (attempt && !['started', 'progress', 'submitted'].includes(event.kind)) ends.set(attempt, event);
    }
    for (const [attempt, outcome] of attemptMarkers) {
      const end = ends.get(attempt);
      const error = end && end.data.error ? (typeof end.data.error === 'string' ? end.data.error : JSON.stringify(end.data.error)) : '';
      setText(outcome, end ? ` · ${end.kind.replace('_', ' ')}${error ? `: ${error}` : ''}` : '');
      outcome.classList.toggle('error-inline', Boolean(error));
    }
  }

  /**
   * Marks every match of the find box in the log (CSS highlights, the text stays as it is) and
   * moves to the next (`step` 1), the previous (-1) or the first (0) one.
   */
  function findInLog(step, scroll = true) {
    const needle = logFind.value;
    matches = [];
    if (needle) {
      // Matched on the text as it is (case folded by the pattern, not by lowercasing, which
      // can change a text's length), at most MAX_MATCHES of them.
      const pattern = new RegExp(needle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'giu');
      const walker = document.createTreeWalker(logPre, NodeFilter.SHOW_TEXT, {
        acceptNode: (node) => (node.parentElement.closest('.log-time, .log-attempt') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
      });
      for (let node = walker.nextNode(); node && matches.length < MAX_MATCHES; node = walker.nextNode()) {
        for (const match of node.data.matchAll(pattern)) {
          const range = new Range();
          range.setStart(node, match.index);
          range.setEnd(node, match.index + match[0].length);
          matches.push(range);
          if (matches.length >= MAX_MATCHES) break;
        }
      }
    }
    if (!matches.length) currentMatch = -1;
    else if (step === 0) currentMatch = Math.min(Math.max(currentMatch, 0), matches.length - 1);
    else currentMatch = (currentMatch + step + matches.length) % matches.length;
    if (window.CSS && CSS.highlights) {
      const all = new Highlight();
      for (const range of matches) all.add(range);
      CSS.highlights.set('log-match', all);
      const current = new Highlight();
      if (currentMatch >= 0) current.add(matches[currentMatch]);
      CSS.highlights.set('log-current', current);
    }
    const more = matches.length >= MAX_MATCHES ? '+' : '';
    setText(logFindCount, needle ? (matches.length ? `${currentMatch + 1} of ${matches.length}${more}` : 'No match') : '');
    if (scroll && currentMatch >= 0) {
      setFollow(false);
      const box = matches[currentMatch].getBoundingClientRect();
      const pane = logPre.getBoundingClientRect();
      programmaticScroll = true;
      logPre.scrollTop += box.top - pane.top - pane.height / 2;
    }
  }

  const renderedEvents = new Map();
  /**
   * The timeline newest first, so the outcome shows without scrolling; a run of progress
   * events is one line (the latest, with how many it stands for).
   */
  function renderTimeline(detail, now) {
    timelineEmpty.hidden = detail.events.length > 0 || detail.eventsLoaded;
    const entries = [];
    for (const event of detail.events) {
      const last = entries[entries.length - 1];
      if (event.kind === 'progress' && last && last.event.kind === 'progress') {
        last.event = event;
        last.folded += 1;
      } else {
        entries.push({ event, folded: 1 });
      }
    }
    entries.reverse();
    const submitted = detail.events.length ? detail.events[0].at : null;
    let cursor = timeline.firstChild;
    const keep = new Set();
    for (const { event, folded } of entries) {
      const key = `${event.kind}|${event.at}|${folded}`;
      keep.add(key);
      let item = renderedEvents.get(key);
      if (!item) {
        item = eventItem(event, now, folded, submitted);
        renderedEvents.set(key, item);
      }
      if (item.li === cursor) cursor = cursor.nextSibling;
      else timeline.insertBefore(item.li, cursor);
    }
    for (const [key, item] of renderedEvents) {
      if (!keep.has(key)) {
        item.li.remove();
        renderedEvents.delete(key);
      }
    }
    if (detail.eventsLoaded && !detail.events.length) {
      timelineEmpty.hidden = false;
      setText(timelineEmpty, 'No events recorded.');
    }
  }

  function eventItem(event, now, folded, submitted) {
    const data = event.data || {};
    const details = [];
    if (folded > 1) details.push(h('span', { class: 'muted' }, `${folded} updates`));
    if (event.status) details.push(h('span', { class: 'badge badge-small', dataset: { status: event.status } }, event.status));
    if (data.attempt) details.push(h('span', { class: 'muted' }, `attempt ${data.attempt}`));
    // Progress comes as data {fraction, message} (stored events) or data.progress (older shapes).
    const progress = data.progress && typeof data.progress === 'object' ? data.progress : data;
    let message = '';
    if (data.error) message = typeof data.error === 'string' ? data.error : JSON.stringify(data.error);
    else if (progress.fraction !== undefined || progress.message) {
      const pct = progress.fraction !== undefined && progress.fraction !== null ? `${Math.round(Number(progress.fraction) * 100)}%` : '';
      message = [pct, progress.message ? String(progress.message) : ''].filter(Boolean).join(' — ');
    }
    const time = h('time', { datetime: event.at, title: exact(event.at), class: 'timeline-time' }, relative(event.at, now));
    // How long after the submit: the wait, each attempt's run.
    const since = submitted ? Date.parse(event.at) - Date.parse(submitted) : NaN;
    if (since > 0) details.push(h('span', { class: 'timeline-offset muted', title: 'after the submit' }, `+${duration(since)}`));
    const li = h(
      'li',
      { class: `timeline-item kind-${String(event.kind).replace(/[^a-z_]/g, '')}` },
      h('span', { class: 'timeline-dot', 'aria-hidden': 'true' }),
      h('div', { class: 'timeline-main' },
        h('div', { class: 'timeline-line' }, h('span', { class: 'timeline-kind' }, event.kind), details, time),
        message ? h('div', { class: data.error ? 'timeline-message error-inline' : 'timeline-message' }, message) : null),
    );
    return { li, time, at: event.at };
  }

  let lastAncestors = null;
  let lastId = null;
  function update(state, prev) {
    if (state.tree.ancestors !== lastAncestors) {
      lastAncestors = state.tree.ancestors;
      replaceChildren(crumbs, breadcrumb(state.tree.ancestors));
    }
    const detail = state.detail;
    if (prev && prev.detail === detail) return;
    if (detail.id !== lastId) {
      lastId = detail.id;
      inputText = null;
      outputText = null;
      renderedEvents.clear();
      timeline.replaceChildren();
      // Another job's log: start the text over (the log of each job is its own).
      resetLog();
      setText(title, `Job ${detail.id}`);
      setFollow(true);
    }
    const now = Date.now();
    badge.hidden = !detail.job;
    typeLabel.hidden = !detail.job;
    actions.hidden = !detail.job;
    if (!detail.job) {
      content.hidden = true;
      notFound.hidden = false;
      replaceChildren(notFound, detail.error
        ? h('p', { role: 'alert' }, detail.error)
        : h('p', { class: 'muted' }, `Loading job ${detail.id}…`));
      return;
    }
    notFound.hidden = true;
    content.hidden = false;
    renderJob(detail.job, now, detail);
    renderLog(detail);
    renderTimeline(detail, now);
    showAttemptOutcomes(detail.events);
  }

  const timer = setInterval(() => {
    const now = Date.now();
    tick(now);
    const job = store.getState().detail.job;
    if (job) {
      timeCell(meta.created, job.created_at, now);
      timeCell(meta.started, job.started_at, now);
      timeCell(meta.finished, job.finished_at, now);
    }
    for (const item of renderedEvents.values()) setText(item.time, relative(item.at, now));
  }, 1000);

  update(store.getState(), null);
  const unsubscribe = store.subscribe(update);
  return {
    el,
    destroy() {
      clearInterval(timer);
      unsubscribe();
      tree.destroy();
      artifacts.destroy();
    },
  };
}
