// fetch wrapper for the REST API: same-origin cookie auth, JSON bodies, and error bodies
// (`{"error": {"code", "message", "details"?}}`) turned into ApiError objects.

import { TIME_BOUNDS } from './model.js';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = Array.isArray(details) ? details : [];
  }
}

/** Called with every 401 so the app can go back to the sign-in form. */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function request(method, path, body, { allow401 = false, signal } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' }, signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network', 'The server cannot be reached. Check that runway is running.');
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const error = json && json.error ? json.error : {};
    const apiError = new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || `${method} ${path} failed with HTTP ${response.status}`,
      error.details,
    );
    if (response.status === 401 && !allow401) onUnauthorized(apiError);
    throw apiError;
  }
  return json;
}

/** Builds `?a=1&b=x,y` from an object, skipping empty values; arrays become comma lists. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) {
      if (value.length) search.set(key, value.join(','));
    } else {
      search.set(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

const enc = encodeURIComponent;

export const api = {
  signIn: (token) => request('POST', '/v1/auth/session', { token }, { allow401: true }),
  signInWithCode: (code) => request('POST', '/v1/auth/session', { code }, { allow401: true }),
  checkCode: (code) => request('POST', '/v1/auth/codes/check', { code }, { allow401: true }),
  me: (opts) => request('GET', '/v1/me', undefined, opts),
  signOut: () => request('DELETE', '/v1/auth/session', undefined, { allow401: true }),
  queues: (opts) => request('GET', '/v1/queues', undefined, opts),
  types: (opts) => request('GET', '/v1/types', undefined, opts),
  job: (id) => request('GET', `/v1/jobs/${enc(id)}`),
  queueHistory: (name, range) => request('GET', `/v1/queues/${enc(name)}/history?range=${enc(range)}`),
  /** The newest jobs that ran `id` again. */
  retries: (id, limit = 20) => request('GET', `/v1/jobs?retry_of=${enc(id)}&limit=${limit}`),
  count: (filter) => request('GET', `/v1/jobs/count${query(filterParams(filter))}`),
  events: (id) => request('GET', `/v1/jobs/${enc(id)}/events`),
  log: (id, offset, limit) => request('GET', `/v1/jobs/${enc(id)}/log${query({ offset, limit })}`),
  submit: (job) => request('POST', '/v1/jobs', job),
  cancel: (id) => request('POST', `/v1/jobs/${enc(id)}/cancel`, {}),
  retry: (id) => request('POST', `/v1/jobs/${enc(id)}/retry`, {}),
  bulk: (body) => request('POST', '/v1/jobs/bulk', body),
  tree: (id, cursor, limit = 100) => request('GET', `/v1/jobs/${enc(id)}/tree${query({ cursor, limit })}`),
  artifacts: (id) => request('GET', `/v1/jobs/${enc(id)}/artifacts`),
  remove: (id) => request('DELETE', `/v1/jobs/${enc(id)}`),
  pauseQueue: (name) => request('POST', `/v1/queues/${enc(name)}/pause`, {}),
  resumeQueue: (name) => request('POST', `/v1/queues/${enc(name)}/resume`, {}),
  trigger: (name) => request('GET', `/v1/triggers/${enc(name)}`),
  fireTrigger: (name) => request('POST', `/v1/triggers/${enc(name)}/fire`, {}),
  pauseTrigger: (name) => request('POST', `/v1/triggers/${enc(name)}/pause`, {}),
  resumeTrigger: (name) => request('POST', `/v1/triggers/${enc(name)}/resume`, {}),
};

/** The jobs filter of the UI (see model.js) as the query parameters of a count. */
export function filterParams(filter) {
  return {
    status: filter.status,
    type: filter.type || undefined,
    queue: filter.queue || undefined,
    q: filter.q || undefined,
    roots: filter.all ? undefined : true,
    ...Object.fromEntries(TIME_BOUNDS.map((bound) => [bound, filter[bound] || undefined])),
  };
}

/** Where an artifact's bytes are served: each part of its name encoded on its own. */
export function artifactUrl(id, name) {
  return `/v1/jobs/${enc(id)}/artifacts/${name.split('/').map(enc).join('/')}`;
}
