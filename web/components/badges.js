// Small shared pieces: the status badge and the progress bar, both updated in place.

import { h, setAttr, setText } from '../dom.js';

export function statusBadge(status) {
  const el = h('span', { class: 'badge', dataset: { testid: 'status' } });
  updateStatusBadge(el, status);
  return el;
}

export function updateStatusBadge(el, status) {
  setText(el, status);
  if (el.dataset.status !== status) el.dataset.status = status;
}

/** A progress bar: a track with a fill whose width is set through the CSSOM. */
export function progressBar() {
  const fill = h('span', { class: 'progress-fill' });
  const el = h('span', { class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, fill);
  el.fill = fill;
  return el;
}

export function updateProgressBar(el, job) {
  const progress = job.progress;
  const finished = job.status === 'succeeded';
  const fraction = finished ? 1 : progress ? Math.max(0, Math.min(1, Number(progress.fraction) || 0)) : 0;
  const percent = Math.round(fraction * 100);
  const width = `${(fraction * 100).toFixed(1)}%`;
  if (el.fill.style.width !== width) el.fill.style.width = width;
  setAttr(el, 'aria-valuenow', String(percent));
  const message = progress && progress.message ? progress.message : '';
  setAttr(el, 'title', message ? `${percent}% — ${message}` : `${percent}%`);
  setAttr(el, 'aria-label', message ? `${percent}%: ${message}` : `${percent}%`);
  const state = job.status === 'running' ? 'active' : progress || finished ? 'done' : 'none';
  if (el.dataset.state !== state) el.dataset.state = state;
  if (el.dataset.status !== job.status) el.dataset.status = job.status;
}
