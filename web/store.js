// The one state object, changed only by reduce(state, action). Session messages and user
// actions both arrive as actions; components subscribe and update their own part of the DOM.
// See README.md for the state shape and the list of actions.

import {
  admitsNewRow, applyUpdate, compareIdsDesc, compareJobs, cursorOf, emptyFilter, eventFromUpdate, filterFromQuery, sameFilter,
} from './model.js';

let noticeCounter = 0;

/** The `notice/show` action; its id (made here, not in the reducer) tells two equal texts apart. */
export function showNotice(kind, text) {
  noticeCounter += 1;
  return { type: 'notice/show', kind, text, id: noticeCounter };
}

export function initialState() {
  return {
    auth: { status: 'checking', error: null, busy: false },
    connection: { status: 'connecting', attempt: 0, detail: '' },
    lastSeq: 0,
    version: '',
    // Who the session speaks for ({name, role}), from `welcome`.
    user: null,
    // Bumped when the reader switches relative and clock times, so times are drawn again.
    timesRevision: 0,
    route: { name: 'jobs', path: '/', params: {}, query: {} },
    types: { list: [], loaded: false },
    queues: { list: [], loaded: false, error: null, busy: {} },
    jobs: {
      filter: emptyFilter(),
      byId: {},
      order: [],
      nextCursor: null,
      loaded: false,
      loadingOlder: false,
      error: null,
      seq: null,
      paused: false,
      pending: {},
      selected: {},
      allMatching: false,
      count: null,
    },
    detail: emptyDetail(null),
    tree: emptyTree(null),
    triggers: emptyTriggers(),
    notice: null,
  };
}

/**
 * The `triggers` subscription: every trigger by name (a `trigger` message replaces one when its
 * `revision` is newer), and each one's newest jobs, read over REST.
 */
function emptyTriggers() {
  return { byName: {}, order: [], loaded: false, error: null, busy: {}, jobs: {} };
}

/**
 * The children of the job on the detail page, oldest first, a page at a time (REST), kept
 * live by the `children` subscription: a child held is updated in place, a new one is added
 * when every page is loaded. `ancestors`: the way up from the root to the job's parent.
 */
function emptyTree(id) {
  return { id, ancestors: [], byId: {}, order: [], nextCursor: null, loaded: false, loadingMore: false, error: null };
}

function emptyDetail(id) {
  return {
    id,
    job: null,
    // The whole input, read over REST: live messages carry a preview of a large one.
    wholeInput: undefined,
    error: null,
    events: [],
    eventsLoaded: false,
    log: { text: '', end: 0, marks: [] },
  };
}

export function createStore(reducer, state) {
  const listeners = new Set();
  let dispatching = false;
  const queue = [];
  const store = {
    getState: () => state,
    dispatch(action) {
      // An action dispatched by a listener runs after the current one has been delivered.
      queue.push(action);
      if (dispatching) return;
      dispatching = true;
      try {
        while (queue.length) {
          const next = queue.shift();
          const prev = state;
          state = reducer(state, next);
          if (state !== prev) for (const listener of [...listeners]) listener(state, prev, next);
        }
      } finally {
        dispatching = false;
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return store;
}

export function reduce(state, action) {
  switch (action.type) {
    case 'times/changed':
      return { ...state, timesRevision: state.timesRevision + 1 };
    case 'auth/checking':
      return { ...state, auth: { status: 'checking', error: null, busy: false } };
    case 'auth/busy':
      return { ...state, auth: { ...state.auth, busy: true, error: null } };
    case 'auth/signed-in':
      return { ...state, auth: { status: 'signed-in', error: null, busy: false } };
    case 'auth/signed-out': {
      const fresh = initialState();
      return {
        ...fresh,
        route: state.route,
        jobs: { ...fresh.jobs, filter: state.jobs.filter },
        auth: { status: 'signed-out', error: action.error || null, busy: false },
        connection: { status: 'offline', attempt: 0, detail: 'signed out' },
      };
    }
    case 'connection/status':
      return { ...state, connection: { status: action.status, attempt: action.attempt || 0, detail: action.detail || '' } };
    case 'route/changed':
      return routeChanged(state, action.route);
    case 'types/loaded':
      return { ...state, types: { list: action.types, loaded: true } };
    case 'queues/loaded':
      return { ...state, queues: { ...state.queues, list: action.queues, storage: action.storage ?? state.queues.storage ?? null, loaded: true, error: null } };
    case 'queues/failed':
      return { ...state, queues: { ...state.queues, error: action.error } };
    case 'queues/busy':
      return { ...state, queues: { ...state.queues, busy: { ...state.queues.busy, [action.name]: action.busy } } };
    case 'triggers/busy':
      return { ...state, triggers: { ...state.triggers, busy: { ...state.triggers.busy, [action.name]: action.busy } } };
    case 'triggers/jobs':
      return { ...state, triggers: { ...state.triggers, jobs: { ...state.triggers.jobs, [action.name]: action.jobs } } };
    case 'session/messages': {
      // One burst of messages is one reducer pass: the list's byId/order/pending are copied
      // once per burst (a draft), not once per message, so 2,000 changes stay cheap.
      const draft = {};
      const next = action.messages.reduce((after, message) => sessionMessage(after, message, draft), state);
      return withLiveRowsCapped(next, state.jobs.order.length);
    }
    case 'jobs/older-loading':
      return { ...state, jobs: { ...state.jobs, loadingOlder: true, error: null } };
    case 'jobs/older-loaded':
      if (!sameFilter(action.filter, state.jobs.filter)) return state;
      return { ...state, jobs: appendOlder(state.jobs, action.jobs, action.nextCursor) };
    case 'jobs/older-failed':
      return { ...state, jobs: { ...state.jobs, loadingOlder: false, error: action.error } };
    case 'jobs/hydrate':
      return hydrate(state, action.jobs);
    case 'jobs/pause':
      if (action.paused) return { ...state, jobs: { ...state.jobs, paused: true } };
      {
        // One held message per job (the latest), applied in seq order.
        const draft = {};
        const held = Object.values(state.jobs.pending).sort((a, b) => (Number(a.seq) || 0) - (Number(b.seq) || 0));
        const resumed = held.reduce((jobs, message) => applyToList(jobs, message, draft), { ...state.jobs, paused: false, pending: {} });
        return withLiveRowsCapped({ ...state, jobs: resumed }, state.jobs.order.length);
      }
    case 'jobs/select': {
      const selected = { ...state.jobs.selected };
      for (const id of action.ids) {
        if (action.on) selected[id] = true;
        else delete selected[id];
      }
      return { ...state, jobs: { ...state.jobs, selected, allMatching: false } };
    }
    case 'jobs/select-none':
      return { ...state, jobs: { ...state.jobs, selected: {}, allMatching: false } };
    case 'jobs/select-all-matching':
      return { ...state, jobs: { ...state.jobs, allMatching: true } };
    case 'jobs/count':
      if (!sameFilter(action.filter, state.jobs.filter)) return state;
      return { ...state, jobs: { ...state.jobs, count: action.count } };
    case 'detail/open':
      if (state.detail.id === action.id) return state;
      return { ...state, detail: emptyDetail(action.id) };
    case 'detail/job':
      if (action.job.id !== state.detail.id) return state;
      return { ...state, detail: { ...state.detail, job: action.job, error: null } };
    case 'detail/input':
      if (action.id !== state.detail.id) return state;
      return { ...state, detail: { ...state.detail, wholeInput: action.input } };
    case 'detail/failed':
      if (action.id !== state.detail.id) return state;
      return { ...state, detail: { ...state.detail, error: action.error } };
    case 'detail/events':
      if (action.id !== state.detail.id) return state;
      return { ...state, detail: { ...state.detail, events: mergeEvents(action.events, state.detail.events), eventsLoaded: true } };
    case 'tree/open':
      if (state.tree.id === action.id && !action.reload) return state;
      return { ...state, tree: emptyTree(action.id) };
    case 'tree/loaded': {
      if (action.id !== state.tree.id) return state;
      const base = action.more ? state.tree : emptyTree(action.id);
      const byId = { ...base.byId };
      const order = [...base.order];
      for (const child of action.children) {
        if (!byId[child.id]) order.push(child.id);
        byId[child.id] = child;
      }
      order.sort((a, b) => compareIdsDesc(b, a));
      return {
        ...state,
        tree: {
          ...base,
          ancestors: action.ancestors ?? base.ancestors,
          byId,
          order,
          nextCursor: action.nextCursor ?? null,
          loaded: true,
          loadingMore: false,
          error: null,
        },
      };
    }
    case 'tree/loading-more':
      if (action.id !== state.tree.id) return state;
      return { ...state, tree: { ...state.tree, loadingMore: true } };
    case 'tree/failed':
      if (action.id !== state.tree.id) return state;
      return { ...state, tree: { ...state.tree, loaded: true, loadingMore: false, error: action.error } };
    case 'notice/show':
      return { ...state, notice: { kind: action.kind || 'info', text: action.text, id: action.id } };
    case 'notice/clear':
      return state.notice ? { ...state, notice: null } : state;
    default:
      return state;
  }
}

function routeChanged(state, route) {
  let next = { ...state, route };
  if (route.name === 'jobs') {
    const filter = filterFromQuery(route.query);
    if (!sameFilter(filter, state.jobs.filter)) {
      next.jobs = {
        ...initialState().jobs,
        filter,
        paused: state.jobs.paused,
      };
    }
  }
  return next;
}

/** The higher of a held seq and a message's `seq` (ignored when it is not a number). */
function raise(held, seq) {
  return typeof seq === 'number' && seq > held ? seq : held;
}

function sessionMessage(state, message, draft = {}) {
  switch (message.tag) {
    case 'welcome':
      // welcome.seq is not a position of anything we hold: the subscriptions' answers are.
      return { ...state, version: message.version || '', user: message.user || null };
    case 'assign':
      if (message.key === 'triggers') {
        const list = (message.value && message.value.triggers) || [];
        const byName = {};
        for (const trigger of list) byName[trigger.name] = trigger;
        return { ...state, triggers: { ...state.triggers, byName, order: list.map((t) => t.name), loaded: true, error: null } };
      }
      if (message.key === 'jobs') {
        return { ...state, lastSeq: raise(state.lastSeq, message.seq), jobs: assignList(state.jobs, message.value, message.seq) };
      }
      if (message.key === 'detail' && message.value && message.value.id === state.detail.id) {
        return { ...state, lastSeq: raise(state.lastSeq, message.seq), detail: { ...state.detail, job: message.value, error: null } };
      }
      return state;
    case 'job': {
      const next = { ...state, lastSeq: raise(state.lastSeq, message.seq) };
      const keys = message.keys || [];
      if (keys.includes('jobs')) next.jobs = listMessage(state.jobs, message, draft);
      if (keys.includes('children') && message.parent === state.tree.id) next.tree = childMessage(state.tree, message);
      if (keys.includes('detail') && message.job_id === state.detail.id) {
        const detail = state.detail;
        next.detail = {
          ...detail,
          job: applyUpdate(detail.job, message),
          events: mergeEvents(detail.events, [eventFromUpdate(message)]),
        };
      }
      return next;
    }
    case 'trigger': {
      const trigger = message.trigger;
      if (message.key !== 'triggers' || !trigger) return state;
      const held = state.triggers.byName[trigger.name];
      if (held && held.revision >= trigger.revision) return state;
      const order = held ? state.triggers.order : [...state.triggers.order, trigger.name].sort();
      return { ...state, triggers: { ...state.triggers, byName: { ...state.triggers.byName, [trigger.name]: trigger }, order } };
    }
    case 'log':
      if (message.key !== 'detail' || message.job_id !== state.detail.id) return state;
      return { ...state, detail: { ...state.detail, log: appendLog(state.detail.log, message) } };
    case 'resync':
      // The list is reloaded by a fresh subscribe (session.js); until its assign we hold no
      // position to resume from.
      if (message.key === 'jobs') return { ...state, jobs: { ...state.jobs, seq: null } };
      return state;
    case 'error':
      if (message.key === 'jobs') return { ...state, jobs: { ...state.jobs, error: message.message, loaded: true, seq: null } };
      if (message.key === 'detail') return { ...state, detail: { ...state.detail, error: message.message } };
      if (message.key === 'triggers') return { ...state, triggers: { ...state.triggers, error: message.message, loaded: true } };
      return state;
    default:
      return state;
  }
}

/** A live change of a child of the detail page's job (see `emptyTree`). */
function childMessage(tree, message) {
  const id = message.job_id;
  const held = tree.byId[id];
  if (!held && !(tree.loaded && tree.nextCursor === null)) return tree;
  const byId = { ...tree.byId, [id]: applyUpdate(held, message) };
  const order = held ? tree.order : [...tree.order, id].sort((a, b) => compareIdsDesc(b, a));
  return { ...tree, byId, order };
}

/**
 * A `job` message for the list. Before the assign of the current filter (seq null) it is
 * ignored: it belongs to the previous subscription, and the assign holds the change. A message
 * not newer than the list's seq is already in it. While paused, only the latest message of
 * each job is held.
 */
function listMessage(jobs, message, draft) {
  if (jobs.seq === null) return jobs;
  if (typeof message.seq === 'number' && message.seq <= jobs.seq) return jobs;
  const seq = raise(jobs.seq, message.seq);
  if (!jobs.paused) return { ...applyToList(jobs, message, draft), seq };
  const id = message.job_id;
  const held = jobs.pending[id];
  // `admitted`: some held change of a job not in the list would have added its row (as live
  // updates would have), so the folded one adds it even if it has left the filter since.
  const admitted = !jobs.byId[id] && ((held && held.admitted) || admitsNewRow(jobs, message));
  if (!held && !jobs.byId[id] && !admitted) return { ...jobs, seq };
  if (draft.pending !== jobs.pending) draft.pending = { ...jobs.pending };
  draft.pending[id] = { ...message, admitted };
  return { ...jobs, pending: draft.pending, seq };
}

/** Rows a list keeps while new jobs arrive live, unless the user loaded more pages. */
export const LIVE_ROWS = 300;

/**
 * New jobs are added at the top; past LIVE_ROWS (or as many rows as the user had loaded) the
 * oldest rows leave the list, and "Load older" brings them back from where it was cut. A
 * burst of thousands of jobs thus never grows the table (and the page's layout work) beyond
 * what the user asked to see.
 */
function withLiveRowsCapped(state, rowsBefore) {
  const jobs = state.jobs;
  const keep = Math.max(LIVE_ROWS, rowsBefore);
  if (jobs.order.length <= keep) return state;
  const order = jobs.order.slice(0, keep);
  const byId = {};
  for (const id of order) byId[id] = jobs.byId[id];
  const selected = {};
  for (const id of Object.keys(jobs.selected)) if (byId[id]) selected[id] = true;
  const last = byId[order[order.length - 1]];
  return { ...state, jobs: { ...jobs, order, byId, selected, nextCursor: cursorOf(last, jobs.filter) } };
}

function assignList(jobs, value, seq) {
  const list = (value && value.jobs) || [];
  const byId = {};
  const order = [];
  for (const job of list) {
    byId[job.id] = job;
    order.push(job.id);
  }
  const selected = {};
  for (const id of Object.keys(jobs.selected)) if (byId[id]) selected[id] = true;
  return {
    ...jobs,
    byId,
    order,
    nextCursor: value ? value.next_cursor ?? null : null,
    loaded: true,
    loadingOlder: false,
    error: null,
    seq: typeof seq === 'number' ? seq : 0,
    pending: {},
    selected,
  };
}

/**
 * Applies a `job` message to the list: a held row is updated, a new one added only as
 * admitsNewRow() says. `draft` holds this burst's private copies of byId and order (never the
 * published ones), which later messages of the same burst mutate in place.
 */
function applyToList(jobs, message, draft = {}) {
  const id = message.job_id;
  const old = jobs.byId[id];
  if (!old && !message.admitted && !admitsNewRow(jobs, message)) return jobs;
  const job = applyUpdate(old, message);
  if (draft.byId !== jobs.byId) draft.byId = { ...jobs.byId };
  draft.byId[id] = job;
  // A row keeps its place unless the change moved it in the list's order (it finished, in a
  // list by finish time).
  if (old && compareJobs(old, job, jobs.filter) === 0) return { ...jobs, byId: draft.byId };
  if (draft.order !== jobs.order) draft.order = jobs.order.slice();
  if (old) draft.order.splice(draft.order.indexOf(id), 1);
  // A held row that now sorts after every other loaded one, while pages remain, belongs to a
  // page not loaded yet: it leaves, and comes back with its page.
  const last = draft.order[draft.order.length - 1];
  if (old && jobs.nextCursor && last && compareJobs(job, draft.byId[last], jobs.filter) > 0) {
    delete draft.byId[id];
    return { ...jobs, byId: draft.byId, order: draft.order };
  }
  insertId(draft.order, id, draft.byId, jobs.filter);
  return { ...jobs, byId: draft.byId, order: draft.order };
}

/** Inserts `id` into `order` where the list's order puts it, in place. */
function insertId(order, id, byId, filter) {
  const job = byId[id];
  const before = (other) => compareJobs(job, byId[other], filter) <= 0;
  if (!order.length || before(order[0])) {
    order.unshift(id);
    return;
  }
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (!before(order[mid])) lo = mid + 1;
    else hi = mid;
  }
  order.splice(lo, 0, id);
}

function appendOlder(jobs, list, nextCursor) {
  const byId = { ...jobs.byId };
  const order = jobs.order.slice();
  for (const job of list) {
    if (byId[job.id]) continue;
    byId[job.id] = job;
    order.push(job.id);
  }
  return { ...jobs, byId, order, nextCursor, loadingOlder: false, error: null };
}

function hydrate(state, list) {
  let jobs = state.jobs;
  let detail = state.detail;
  for (const full of list) {
    const held = jobs.byId[full.id];
    if (held) {
      // Keep live fields that may be newer than the REST read; take what only REST has.
      const merged = { ...full, ...pickLive(held) };
      jobs = { ...jobs, byId: { ...jobs.byId, [full.id]: merged } };
    }
    if (detail.id === full.id && !detail.job) detail = { ...detail, job: full };
  }
  return jobs === state.jobs && detail === state.detail ? state : { ...state, jobs, detail };
}

function pickLive(job) {
  const { status, progress, error, output, attempt, max_attempts, started_at, finished_at } = job;
  const live = { status, progress, error, output, attempt, max_attempts };
  if (started_at) live.started_at = started_at;
  if (finished_at) live.finished_at = finished_at;
  return live;
}

const eventKey = (event) => `${event.kind}|${event.at}`;

function mergeEvents(a, b) {
  const seen = new Map();
  for (const event of [...a, ...b]) {
    const key = eventKey(event);
    if (!seen.has(key) || (seen.get(key).live && !event.live)) seen.set(key, event);
  }
  return [...seen.values()].sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Appends log text idempotently by byte offset: what we already hold is dropped. Its marks
 * (where each part came from, by byte offset) join those held from where the new text starts.
 */
function appendLog(log, message) {
  const offset = Number(message.offset) || 0;
  const bytes = encoder.encode(message.data || '');
  const end = offset + bytes.length;
  if (end <= log.end) return log;
  let data = message.data;
  if (offset < log.end) data = decoder.decode(bytes.subarray(log.end - offset));
  // offset > log.end would be a gap; the server never sends one within a session.
  const marks = log.marks.slice();
  let inForce = null;
  // Marks count bytes; the page slices characters: each mark also gets its `index` in `text`.
  const fresh = offset < log.end ? bytes.subarray(log.end - offset) : bytes;
  for (const mark of message.marks || []) {
    if (mark.offset <= log.end) inForce = { ...mark, offset: log.end, index: log.text.length };
    else marks.push({ ...mark, index: log.text.length + decoder.decode(fresh.subarray(0, mark.offset - log.end)).length });
  }
  const last = log.marks[log.marks.length - 1];
  if (inForce && !(last && last.attempt === inForce.attempt && last.stream === inForce.stream && last.at === inForce.at)) {
    marks.splice(log.marks.length, 0, inForce);
  }
  return { ...log, text: log.text + data, end, marks };
}
