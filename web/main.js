// Wires everything: the store, the router, the session socket, sign-in, and the page that the
// route names. Side effects (subscriptions, REST loads) live here, reacting to state changes.

import { api, setUnauthorizedHandler } from './api.js';
import { h } from './dom.js';
import { sameFilter, sessionQuery } from './model.js';
import { parseLocation, startRouter } from './router.js';
import { createSession } from './session.js';
import { createStore, initialState, reduce, showNotice } from './store.js';
import { createHeader } from './components/header.js';
import { createJobDetail } from './components/job-detail.js';
import { createJobsPage } from './components/jobs-page.js';
import { createLogin } from './components/login.js';
import { createNotice } from './components/notice.js';
import { createQueues } from './components/queues.js';
import { createSubmitForm } from './components/submit-form.js';
import { createTriggers } from './components/triggers.js';
import { confirmDialog } from './components/dialog.js';
import { showShortcuts } from './components/shortcuts.js';

const store = createStore(reduce, { ...initialState(), route: parseLocation() });
const root = document.getElementById('app');

const session = createSession({
  onMessages: (messages) => store.dispatch({ type: 'session/messages', messages }),
  onStatus: (status, attempt, detail) => store.dispatch({ type: 'connection/status', status, attempt, detail }),
  onPolicyClose: async () => {
    try {
      await api.types({ allow401: true });
      return true;
    } catch (error) {
      if (error.status === 401) {
        signedOut('Your session has ended. Sign in again.');
        return false;
      }
      return true;
    }
  },
});

setUnauthorizedHandler(() => {
  if (store.getState().auth.status === 'signed-in') signedOut('Your session has ended. Sign in again.');
});

let navigate = () => {};

// ---- sign-in ------------------------------------------------------------------------------

async function signIn(token) {
  store.dispatch({ type: 'auth/busy' });
  try {
    await api.signIn(token);
    signedIn();
  } catch (error) {
    let message = error.message;
    if (error.status === 401) message = 'That token is not valid. Check that you copied all of it, or ask for a new one.';
    else if (error.status === 403) message = `Sign-in from this address is not allowed by the server (${error.message}).`;
    store.dispatch({ type: 'auth/signed-out', error: message });
  }
}

async function signOut() {
  session.stop();
  try {
    await api.signOut();
  } catch {
    /* signed out locally either way */
  }
  store.dispatch({ type: 'auth/signed-out' });
}

function signedIn(types) {
  store.dispatch({ type: 'auth/signed-in' });
  session.start();
  subscribeJobs();
  detailId = null; // a new session: the detail (if shown) must be subscribed again
  triggersShown = false;
  routeEffects(store.getState(), null);
  if (types) store.dispatch({ type: 'types/loaded', types });
  else loadTypes();
  api.queues().then(({ queues: list, storage }) => store.dispatch({ type: 'queues/loaded', queues: list, storage }), () => {});
}

function signedOut(error) {
  session.stop();
  store.dispatch({ type: 'auth/signed-out', error });
}

async function loadTypes() {
  try {
    const { types } = await api.types();
    store.dispatch({ type: 'types/loaded', types });
  } catch {
    store.dispatch({ type: 'types/loaded', types: [] });
  }
}

// ---- effects -------------------------------------------------------------------------------

function subscribeJobs() {
  const filter = store.getState().jobs.filter;
  session.subscribe('jobs', { jobs: sessionQuery(filter, 100) }, {
    // Resume (after a reconnect) only while we hold the list of exactly this filter, loaded by
    // its assign: jobs.seq is null otherwise, and the subscribe gets a fresh assign.
    since: () => {
      const { jobs } = store.getState();
      return sameFilter(jobs.filter, filter) ? jobs.seq : null;
    },
  });
}

let detailId = null;
let triggersShown = false;
function routeEffects(state) {
  if (state.auth.status !== 'signed-in') return;
  // The triggers page keeps every trigger live while it is shown.
  const showTriggers = state.route.name === 'triggers';
  if (showTriggers !== triggersShown) {
    triggersShown = showTriggers;
    if (showTriggers) session.subscribe('triggers', { triggers: true });
    else session.unsubscribe('triggers');
  }
  const id = state.route.name === 'job' ? state.route.params.id : null;
  if (id === detailId) return;
  detailId = id;
  if (!id) {
    session.unsubscribe('detail');
    session.unsubscribe('children');
    return;
  }
  store.dispatch({ type: 'detail/open', id });
  session.subscribe('detail', { job: id, log: true });
  // Changes of the job's children; their rows come a page at a time over REST.
  session.subscribe('children', { jobs: { parent: id, limit: 1 } });
  loadEvents(id);
  loadTree(id);
  // The socket may be down; REST shows the job meanwhile.
  api.job(id).then(
    (job) => {
      store.dispatch({ type: 'detail/input', id, input: job.input ?? null });
      store.dispatch({ type: 'jobs/hydrate', jobs: [job] });
    },
    (error) => store.dispatch({ type: 'detail/failed', id, error: error.status === 404 ? `Job ${id} does not exist.` : error.message }),
  );
}

/** The job's ancestors and first page of children, afresh. */
async function loadTree(id) {
  store.dispatch({ type: 'tree/open', id, reload: true });
  try {
    const tree = await api.tree(id, null, 100);
    store.dispatch({ type: 'tree/loaded', id, ancestors: tree.ancestors, children: tree.children, nextCursor: tree.next_cursor ?? null });
  } catch (error) {
    store.dispatch({ type: 'tree/failed', id, error: error.message });
  }
}

async function loadEvents(id) {
  try {
    const { events } = await api.events(id);
    store.dispatch({ type: 'detail/events', id, events: events || [] });
  } catch {
    store.dispatch({ type: 'detail/events', id, events: [] });
  }
}

store.subscribe((state, prev) => {
  if (state.auth.status !== 'signed-in') return;
  if (state.jobs.filter !== prev.jobs.filter) subscribeJobs();
  if (state.route !== prev.route) routeEffects(state);
  // Back after a drop: the detail is re-assigned by the session; its timeline comes from REST.
  if (state.connection.status === 'live' && prev.connection.status !== 'live' && detailId && state.detail.eventsLoaded) {
    loadEvents(detailId);
    // Changes missed while away: the children's rows are read again.
    loadTree(detailId);
  }
});

// ---- rendering -----------------------------------------------------------------------------

let shell = null; // {header, notice, page, pageName, main}
let login = null;

function renderAuth(state) {
  const status = state.auth.status;
  if (status === 'signed-in') {
    if (login) {
      login.destroy();
      login = null;
    }
    if (!shell) mountShell();
  } else if (status === 'signed-out') {
    if (shell) unmountShell();
    if (!login) {
      login = createLogin({ store, onSignIn: signIn });
      root.replaceChildren(login.el);
      document.title = 'Sign in · runway';
    }
  } else if (!shell && !login) {
    root.replaceChildren(h('div', { class: 'boot' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading…'));
  }
}

function mountShell() {
  const header = createHeader({ store, onSignOut: signOut });
  const notice = createNotice({ store });
  const container = h('div', { class: 'page-container' });
  // Past the header to the page (each page is the `main` landmark).
  const skip = h('a', {
    class: 'skip-link',
    href: '#main',
    onclick: (event) => {
      event.preventDefault();
      const main = document.getElementById('main');
      if (!main) return;
      main.setAttribute('tabindex', '-1');
      main.focus();
    },
  }, 'Skip to content');
  shell = { header, notice, container, page: null, pageKey: null };
  root.replaceChildren(skip, header.el, container, notice.el);
  renderPage(store.getState(), { focus: false });
}

function unmountShell() {
  if (shell.page) shell.page.destroy();
  shell.header.destroy();
  shell.notice.destroy();
  shell = null;
}

const TITLES = { jobs: 'Jobs', job: 'Job', submit: 'Submit', queues: 'Queues', triggers: 'Triggers', notfound: 'Not found' };

function renderPage(state, { focus = true } = {}) {
  const route = state.route;
  // The submit page is rebuilt for a new ?from=/?type= ; the others keep their DOM.
  const key = route.name === 'submit' ? `submit${location.search}` : route.name;
  if (shell.pageKey === key) return;
  if (shell.page) shell.page.destroy();
  const ctx = { store, navigate, session };
  let page;
  switch (route.name) {
    case 'jobs':
      page = createJobsPage(ctx);
      break;
    case 'job':
      page = createJobDetail(ctx);
      break;
    case 'submit':
      page = createSubmitForm(ctx);
      break;
    case 'queues':
      page = createQueues(ctx);
      break;
    case 'triggers':
      page = createTriggers(ctx);
      break;
    default:
      page = {
        el: h('main', { class: 'page', id: 'main' }, h('div', { class: 'empty-state' },
          h('h1', null, 'Page not found'), h('p', { class: 'muted' }, `Nothing lives at ${route.path}.`), h('a', { href: '/jobs' }, 'Go to the job list'))),
        destroy() {},
      };
  }
  shell.page = page;
  shell.pageKey = key;
  shell.container.replaceChildren(page.el);
  window.scrollTo(0, 0);
  if (focus) focusHeading(page);
}

/** After a navigation, keyboard and screen-reader users start at the new page's heading. */
function focusHeading(page) {
  const heading = page.el.querySelector('h1');
  if (!heading) return;
  heading.setAttribute('tabindex', '-1');
  heading.focus({ preventScroll: true });
}

store.subscribe((state, prev) => {
  if (state.auth !== prev.auth) renderAuth(state);
  if (shell && state.route !== prev.route) renderPage(state);
  if (state.route !== prev.route || state.detail.job !== prev.detail.job) {
    const base = TITLES[state.route.name] || 'runway';
    document.title = state.route.name === 'job' ? `Job ${state.route.params.id}${state.detail.job ? ` · ${state.detail.job.status}` : ''} · runway` : `${base} · runway`;
  }
});

// ---- keyboard ------------------------------------------------------------------------------

document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || !shell) return;
  const target = event.target;
  if (target instanceof HTMLElement && (target.isContentEditable || target.closest('input, textarea, select'))) return;
  if (document.querySelector('dialog[open]')) return;
  if (event.key === '?') {
    event.preventDefault();
    showShortcuts();
    return;
  }
  // Enter on a link or a button is theirs.
  if (event.key === 'Enter' && target instanceof HTMLElement && target.closest('a, button')) return;
  if (event.key !== '/') {
    if (shell.page && shell.page.key && shell.page.key(event.key)) event.preventDefault();
    return;
  }
  if (shell && shell.page && shell.page.focusSearch) {
    event.preventDefault();
    shell.page.focusSearch();
  } else if (shell) {
    event.preventDefault();
    navigate('/jobs');
    queueMicrotask(() => shell && shell.page && shell.page.focusSearch && shell.page.focusSearch());
  }
});

// ---- start ---------------------------------------------------------------------------------

navigate = startRouter((route) => store.dispatch({ type: 'route/changed', route }));
renderAuth(store.getState());

/**
 * `/#code=rwc_…` (the link `runway serve` and `runway dashboard` print, single use) or
 * `/#token=rwy_…` (a link with a token, as older servers printed): `{code}`, `{token}`,
 * `{error}` for a damaged link, or null without one. The fragment goes either way: a secret
 * must not stay in the address bar or the history.
 */
function linkFromHash() {
  const match = /^#(code|token)=(.*)$/s.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, '', location.pathname + location.search);
  let value;
  try {
    value = decodeURIComponent(match[2]).trim();
  } catch {
    return { error: 'The sign-in link is damaged (a stray “%” in it). Copy the whole link again, or paste a token here.' };
  }
  if (!value) return { error: 'The sign-in link has nothing after its “#”. Copy the whole link again, or paste a token here.' };
  return match[1] === 'code' ? { code: value } : { token: value };
}

/**
 * The declared types when the cookie holds a session, null when it does not. The types are
 * the cheapest authenticated read (configuration, no database), and the page needs them.
 */
async function currentSession() {
  try {
    const { types } = await api.types({ allow401: true });
    return types;
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}

/** The user the page is signed in as, or null without a session. */
async function currentUser() {
  try {
    return await api.me({ allow401: true });
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}

/** Keeps (or starts showing) the session the page has, with a notice. */
function stayWith(kind, text) {
  if (store.getState().auth.status !== 'signed-in') signedIn();
  store.dispatch(showNotice(kind, text));
}

/**
 * A sign-in code's link: says whose session it would start and asks first; a page signed in
 * as someone else asks before switching, one signed in as the same user keeps its session
 * and leaves the code unspent.
 */
async function useCodeLink(code) {
  let current = null;
  try {
    current = await currentUser();
  } catch {
    /* the server cannot be reached: the check below says so */
  }
  let offered;
  try {
    offered = (await api.checkCode(code)).user;
  } catch (error) {
    const message = error.status === 404
      ? 'This sign-in link was used already or has expired. Run `runway dashboard` for a new one, or paste a token.'
      : `The sign-in link could not be checked: ${error.message}`;
    if (current) stayWith('error', `${message} You are still signed in as ${current.name}.`);
    else store.dispatch({ type: 'auth/signed-out', error: message });
    return;
  }
  if (current && current.name === offered.name) {
    stayWith('info', `Already signed in as ${current.name}; the link was not used.`);
    return;
  }
  if (!current && store.getState().auth.status !== 'signed-out') store.dispatch({ type: 'auth/signed-out' });
  const ok = await confirmDialog(current
    ? {
      title: `Switch to ${offered.name}?`,
      body: `You are signed in as ${current.name} (${current.role}). The link signs you in as ${offered.name} (${offered.role}) instead.`,
      confirmLabel: `Sign in as ${offered.name}`,
    }
    : {
      title: `Sign in as ${offered.name}?`,
      body: `The link signs this browser in as ${offered.name} (${offered.role}).`,
      confirmLabel: `Sign in as ${offered.name}`,
    });
  if (!ok) {
    if (current) stayWith('info', `Still signed in as ${current.name}; the link was not used.`);
    return;
  }
  session.stop();
  store.dispatch({ type: 'auth/busy' });
  try {
    await api.signInWithCode(code);
    signedIn();
  } catch (error) {
    const message = error.status === 404
      ? 'This sign-in link was used already or has expired. Run `runway dashboard` for a new one, or paste a token.'
      : error.message;
    store.dispatch({ type: 'auth/signed-out', error: message });
  }
}

/** A token's link is used only when there is no session yet: one that works is kept. */
async function useLink(link) {
  if (link.code) {
    await useCodeLink(link.code);
    return;
  }
  let types = null;
  try {
    types = await currentSession();
  } catch {
    /* the server cannot be reached: the sign-in below says so */
  }
  if (types) {
    if (store.getState().auth.status !== 'signed-in') signedIn(types);
    store.dispatch(link.error
      ? showNotice('error', `${link.error} You are still signed in.`)
      : showNotice('info', 'Already signed in; the link was not used.'));
    return;
  }
  session.stop();
  if (link.error) store.dispatch({ type: 'auth/signed-out', error: link.error });
  else await signIn(link.token);
}

window.addEventListener('hashchange', () => {
  const link = linkFromHash();
  if (link) useLink(link);
});

async function start() {
  const link = linkFromHash();
  if (link) {
    await useLink(link);
    return;
  }
  try {
    const types = await currentSession();
    if (types) signedIn(types);
    else store.dispatch({ type: 'auth/signed-out' });
  } catch (error) {
    store.dispatch({ type: 'auth/signed-out', error: `${error.message}` });
  }
}

start();
