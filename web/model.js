// Pure helpers about jobs and filters, shared by the reducer and the components.

export const STATUSES = ['queued', 'scheduled', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'];
export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export const isFinished = (job) => TERMINAL.has(job.status);

/** What a list can be sorted by (`created`, newest first, is the default). */
export const SORTS = ['created', 'started', 'finished', 'duration', 'attempts'];
/** The time bounds a list can keep to, as the API names them. */
export const TIME_BOUNDS = ['created_after', 'created_before', 'finished_after', 'finished_before'];

export const emptyFilter = () => ({
  status: [], type: '', queue: '', q: '', all: false, sort: 'created', order: 'desc',
  created_after: '', created_before: '', finished_after: '', finished_before: '',
});

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
    sort: SORTS.includes(query.sort) ? query.sort : 'created',
    order: query.order === 'asc' ? 'asc' : 'desc',
    ...Object.fromEntries(TIME_BOUNDS.map((bound) => [bound, instantOrBlank(query[bound])])),
  };
}

/** An instant of the URL in the form the server reads (RFC 3339, UTC), or '' when it is none. */
function instantOrBlank(text) {
  if (!text) return '';
  const at = new Date(text);
  // The server reads RFC 3339, whose years end at 9999.
  return Number.isNaN(at.getTime()) || at.getUTCFullYear() > 9999 || at.getUTCFullYear() < 0 ? '' : at.toISOString();
}

/** The URL query of a filter, in a stable order so equal filters give equal URLs. */
export function filterToSearch(filter) {
  const search = new URLSearchParams();
  if (filter.status.length) search.set('status', filter.status.join(','));
  if (filter.type) search.set('type', filter.type);
  if (filter.queue) search.set('queue', filter.queue);
  if (filter.q) search.set('q', filter.q);
  if (filter.all) search.set('all', '1');
  if (filter.sort && filter.sort !== 'created') search.set('sort', filter.sort);
  if (filter.order === 'asc') search.set('order', 'asc');
  for (const bound of TIME_BOUNDS) if (filter[bound]) search.set(bound, filter[bound]);
  const text = search.toString().replaceAll('%2C', ',').replaceAll('%3A', ':');
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
  if (filter.sort && filter.sort !== 'created') query.sort = filter.sort;
  if (filter.order === 'asc') query.order = 'asc';
  for (const bound of TIME_BOUNDS) if (filter[bound]) query[bound] = filter[bound];
  return query;
}

/** Whether a filter keeps to a span of time. */
export const hasTimeRange = (filter) => TIME_BOUNDS.some((bound) => filter[bound]);

/** Whether `at` (an RFC 3339 text or null) lies from `after` (included) to `before`. */
function inRange(at, after, before) {
  if (!after && !before) return true;
  if (!at) return false;
  const when = Date.parse(at);
  return (!after || when >= Date.parse(after)) && (!before || when < Date.parse(before));
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
  if (!inRange(job.created_at, filter.created_after, filter.created_before)) return false;
  if (!inRange(job.finished_at, filter.finished_after, filter.finished_before)) return false;
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

/** Microseconds since the epoch of an RFC 3339 instant, exactly as the server counts them. */
export function micros(at) {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(at);
  if (!match) return Date.parse(at) * 1000;
  const fraction = Number((match[2] || '').padEnd(6, '0').slice(0, 6));
  return Date.parse(match[1] + match[3]) * 1000 + fraction;
}

/** The value a job sorts by in a list sorted by `sort`, or null when it has none. */
export function sortKey(job, sort) {
  switch (sort) {
    case 'started': return job.started_at ? micros(job.started_at) : null;
    case 'finished': return job.finished_at ? micros(job.finished_at) : null;
    case 'duration': return job.started_at && job.finished_at ? micros(job.finished_at) - micros(job.started_at) : null;
    case 'attempts': return job.attempt ?? 0;
    default: return null;
  }
}

/**
 * The list's order of two jobs, as the server sorts them (negative when `a` comes first): by the
 * sort key, jobs without one last in either direction, ties by id in the same direction.
 */
export function compareJobs(a, b, filter) {
  const direction = filter.order === 'asc' ? -1 : 1;
  if (filter.sort && filter.sort !== 'created') {
    const ka = sortKey(a, filter.sort);
    const kb = sortKey(b, filter.sort);
    if (ka === null && kb !== null) return 1;
    if (kb === null && ka !== null) return -1;
    if (ka !== kb) return (ka < kb ? 1 : -1) * direction;
  }
  return compareIdsDesc(a.id, b.id) * direction;
}

/** The cursor of the page that ends at `job` (see docs/api.md, sorting). */
export function cursorOf(job, filter) {
  if (!filter.sort || filter.sort === 'created') return job.id;
  const key = sortKey(job, filter.sort);
  return `${key === null ? '-' : key}:${job.id}`;
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
 * filter, and lie in the loaded range (no more pages, or before the last row held in the list's
 * order) so
 * changes to old jobs below the loaded pages do not flood the table. `q` is not checked here:
 * the server sends only jobs that match it (and the client's text test is approximate).
 */
export function admitsNewRow(list, update) {
  const job = applyUpdate(null, update);
  if (!matchesFilter(job, { ...list.filter, q: '' })) return false;
  if (list.nextCursor === null || list.nextCursor === undefined || !list.order.length) return true;
  return compareJobs(job, list.byId[list.order[list.order.length - 1]], list.filter) < 0;
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
