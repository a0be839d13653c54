// Pure helpers about jobs and filters, shared by the reducer and the components.

export const STATUSES = ['queued', 'scheduled', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'];
export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export const isFinished = (job) => TERMINAL.has(job.status);

export const emptyFilter = () => ({ status: [], type: '', queue: '', q: '', all: false });

/** The jobs filter from a URL query (`status=running,failed&type=render&q=foo`). */
export function filterFromQuery(query) {
  const status = (query.status || '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => STATUSES.includes(s));
  return {
    status: [...new Set(status)].sort((a, b) => STATUSES.indexOf(a) - STATUSES.indexOf(b)),
    type: query.type || '',
    queue: query.queue || '',
    q: (query.q || '').slice(0, 200),
    // Root jobs by default; `all=1` shows children too.
    all: query.all === '1',
  };
}

/** The URL query of a filter, in a stable order so equal filters give equal URLs. */
export function filterToSearch(filter) {
  const search = new URLSearchParams();
  if (filter.status.length) search.set('status', filter.status.join(','));
  if (filter.type) search.set('type', filter.type);
  if (filter.queue) search.set('queue', filter.queue);
  if (filter.q) search.set('q', filter.q);
  if (filter.all) search.set('all', '1');
  const text = search.toString().replaceAll('%2C', ',');
  return text ? `?${text}` : '';
}

export const sameFilter = (a, b) => filterToSearch(a) === filterToSearch(b);

/** The session `jobs` query of a filter. */
export function sessionQuery(filter, limit = 100) {
  const query = { limit };
  if (filter.status.length) query.status = filter.status;
  if (filter.type) query.type = [filter.type];
  if (filter.queue) query.queue = [filter.queue];
  if (filter.q) query.q = filter.q;
  if (!filter.all) query.roots = true;
  return query;
}

/**
 * Whether a job matches the filter, as far as the client can tell (the `q` test on the input
 * uses our own JSON text, which may differ in spacing from the server's).
 */
export function matchesFilter(job, filter) {
  if (!filter.all && job.parent) return false;
  if (filter.status.length && !filter.status.includes(job.status)) return false;
  if (filter.type && job.type !== filter.type) return false;
  if (filter.queue && job.queue !== filter.queue) return false;
  if (filter.q) {
    const q = filter.q.trim();
    if (/^\d+$/.test(q)) return job.id === q;
    const needle = q.toLowerCase();
    if (job.type.toLowerCase().includes(needle)) return true;
    const text = JSON.stringify(job.input ?? null).toLowerCase();
    return text.includes(needle) || JSON.stringify(job.input ?? null, null, 1).toLowerCase().includes(needle);
  }
  return true;
}

/** Newest first: ids are increasing integers. */
export function compareIdsDesc(a, b) {
  if (a.length !== b.length) return b.length - a.length;
  return a < b ? 1 : a > b ? -1 : 0;
}

/**
 * The job a session/feed `job` message describes: every message carries the whole job (the
 * fields of GET /v1/jobs/{id}, with `job_id` and `job_type` for `id` and `type`), so the
 * newest message of a job is all there is to know about it.
 */
export function applyUpdate(job, update) {
  return {
    ...(job || {}),
    id: update.job_id,
    type: update.job_type,
    queue: update.queue,
    status: update.status,
    priority: update.priority ?? 0,
    parent: update.parent ?? null,
    retry_of: update.retry_of ?? null,
    input: update.input,
    output: update.output ?? null,
    error: update.error ?? null,
    progress: update.progress ?? null,
    attempt: update.attempt,
    max_attempts: update.max_attempts,
    cancel_requested: Boolean(update.cancel_requested),
    created_at: update.created_at,
    run_at: update.run_at,
    started_at: update.started_at ?? null,
    finished_at: update.finished_at ?? null,
    worker: update.worker ?? null,
    log_size: update.log_size ?? 0,
    root: update.root ?? null,
    depth: update.depth ?? 0,
    key: update.key ?? null,
    phase: update.phase ?? 'run',
    phase_attempt: update.phase_attempt ?? update.attempt,
    children: update.children ?? null,
    trigger: update.trigger ?? null,
    owner: update.owner ?? null,
  };
}

/**
 * Whether a `job` message for a job the list does not hold adds a row: the job must match the
 * filter, and lie in the loaded range (no more pages, or newer than the oldest row held) so
 * changes to old jobs below the loaded pages do not flood the table. `q` is not checked here:
 * the server sends only jobs that match it (and the client's text test is approximate).
 */
export function admitsNewRow(list, update) {
  const job = { type: update.job_type, queue: update.queue, status: update.status, input: update.input, id: update.job_id, parent: update.parent ?? null };
  if (!matchesFilter(job, { ...list.filter, q: '' })) return false;
  if (list.nextCursor === null || list.nextCursor === undefined || !list.order.length) return true;
  return compareIdsDesc(update.job_id, list.order[list.order.length - 1]) < 0;
}

/** A timeline event made from a live `job` message. */
export function eventFromUpdate(update) {
  const data = {};
  if (update.kind !== 'progress') data.attempt = update.attempt;
  if (update.error && (update.kind === 'failed' || update.kind === 'retry_scheduled')) data.error = update.error;
  if (update.kind === 'progress' && update.progress) {
    data.fraction = update.progress.fraction;
    if (update.progress.message) data.message = update.progress.message;
  }
  return { seq: update.seq, at: update.at, kind: update.kind, status: update.status, data, live: true };
}
