// The files a job produced: name, size, type and a download link each, with a preview of
// what a browser shows without running anything: an audio or video player, the image, or the
// first 64 KiB of plain text (as text). HTML, SVG and anything else are downloads only, and
// the server serves them as attachments with a sandbox CSP, so no artifact runs script here.

import { api, artifactUrl } from '../api.js';
import { h, replaceChildren, setText } from '../dom.js';
import { bytes } from '../format.js';

/** The first bytes of a text artifact shown in the page. */
const TEXT_PREVIEW_BYTES = 64 * 1024;

/** What kind of preview a content type gets: audio, video, image, text, or none. */
export function previewKind(contentType) {
  const essence = String(contentType || '').split(';')[0].trim().toLowerCase();
  if (essence.startsWith('audio/')) return 'audio';
  if (essence.startsWith('video/')) return 'video';
  if (essence.startsWith('image/') && essence !== 'image/svg+xml') return 'image';
  if (essence === 'text/plain') return 'text';
  return null;
}

export function createArtifacts({ store }) {
  const list = h('ul', { class: 'artifact-list', dataset: { testid: 'artifacts' } });
  const summary = h('span', { class: 'muted small' });
  const el = h(
    'section',
    { class: 'card', hidden: true, 'aria-label': 'Artifacts' },
    h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, 'Artifacts'), summary),
    list,
  );

  let shownFor = null; // `${id}|${status}|${attempt}` the list was last read for
  let rendered = ''; // the list as last drawn, to redraw only on change
  let reading = 0;

  async function load(id, key) {
    const token = ++reading;
    try {
      const { artifacts } = await api.artifacts(id);
      if (token !== reading || store.getState().detail.id !== id) return;
      render(id, artifacts);
    } catch {
      if (token === reading) shownFor = key === shownFor ? null : shownFor;
    }
  }

  function render(id, artifacts) {
    const text = JSON.stringify([id, artifacts]);
    if (text === rendered) return;
    rendered = text;
    el.hidden = artifacts.length === 0;
    const total = artifacts.reduce((sum, artifact) => sum + artifact.size, 0);
    setText(summary, `${artifacts.length} ${artifacts.length === 1 ? 'file' : 'files'} · ${bytes(total)}`);
    replaceChildren(list, artifacts.map((artifact) => item(id, artifact)));
  }

  function item(id, artifact) {
    const url = artifactUrl(id, artifact.name);
    const kind = previewKind(artifact.content_type);
    const download = h('a', { href: url, download: artifact.name.split('/').pop(), class: 'artifact-name mono' }, artifact.name);
    let preview = null;
    if (kind === 'audio') preview = h('audio', { controls: true, preload: 'metadata', src: url, dataset: { testid: 'artifact-audio' } });
    else if (kind === 'video') preview = h('video', { controls: true, preload: 'metadata', src: url, class: 'artifact-video' });
    else if (kind === 'image') preview = h('img', { src: url, alt: artifact.name, class: 'artifact-image', loading: 'lazy' });
    else if (kind === 'text') preview = textPreview(url, artifact.size);
    return h(
      'li',
      { class: 'artifact', dataset: { name: artifact.name } },
      h('div', { class: 'artifact-head' }, download,
        h('span', { class: 'muted small' }, `${bytes(artifact.size)} · ${artifact.content_type}`),
        kind ? null : h('span', { class: 'muted small' }, '(download only)')),
      preview,
    );
  }

  function textPreview(url, size) {
    const pre = h('pre', { class: 'artifact-text mono', dataset: { testid: 'artifact-text' } }, 'Loading…');
    fetch(url, { credentials: 'same-origin', headers: { Range: `bytes=0-${TEXT_PREVIEW_BYTES - 1}` } })
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(`HTTP ${response.status}`))))
      .then((text) => {
        pre.textContent = size > TEXT_PREVIEW_BYTES ? `${text}\n… (the first 64 KiB of ${bytes(size)})` : text;
      })
      .catch((error) => {
        pre.textContent = `Could not load the preview: ${error.message}`;
      });
    return pre;
  }

  function update(state, prev) {
    const detail = state.detail;
    if (prev && prev.detail === detail) return;
    const job = detail.job;
    if (!job) {
      el.hidden = true;
      return;
    }
    // Artifacts are kept when an attempt ends: read them again when the job moves on.
    const key = `${job.id}|${job.status}|${job.attempt}|${job.phase}`;
    if (key === shownFor) return;
    if (!shownFor || !shownFor.startsWith(`${job.id}|`)) {
      rendered = '';
      el.hidden = true;
      list.replaceChildren();
    }
    shownFor = key;
    load(job.id, key);
  }

  update(store.getState(), null);
  const unsubscribe = store.subscribe(update);
  return { el, destroy: unsubscribe };
}
