// The triggers page: one card per trigger (keyed by name, updated in place), kept live by the
// `triggers` subscription. A watch trigger shows its state machine with the current state lit,
// the countdown to its next run, the paths gathered for it; a schedule its expression and next
// fire; a webhook its URL. Each card lists the trigger's newest jobs (REST, read again when its
// last job changes) and has Fire now / Pause / Resume.

import { api } from '../api.js';
import { h, setAttr, setText } from '../dom.js';
import { duration, exact, parseTime, relative } from '../format.js';
import { showNotice } from '../store.js';
import { statusBadge } from './badges.js';

const STATES = ['idle', 'waiting', 'running', 'cooldown'];
const STATE_HELP = {
  idle: 'nothing to do',
  waiting: 'gathering changes until the debounce passes',
  running: 'its job runs; a change now means one more run',
  cooldown: 'its job ended; the next run waits for the cooldown',
};
const PATHS_SHOWN = 20;
const JOBS_SHOWN = 5;
/** The newest jobs are read again this often while the page is shown, for their statuses. */
const JOBS_REFRESH_MS = 2000;

export function createTriggers({ store }) {
  const list = h('div', { class: 'trigger-grid' });
  const status = h('p', { class: 'muted' }, 'Loading triggers…');
  const el = h('main', { class: 'page page-triggers', id: 'main' }, h('div', { class: 'page-head' }, h('h1', null, 'Triggers')), status, list);
  const cards = new Map();

  async function loadJobs(name) {
    try {
      const trigger = await api.trigger(name);
      store.dispatch({ type: 'triggers/jobs', name, jobs: trigger.recent_jobs || [] });
    } catch {
      /* the card keeps what it shows */
    }
  }

  async function act(name, verb) {
    store.dispatch({ type: 'triggers/busy', name, busy: true });
    try {
      if (verb === 'fire') {
        const answer = await api.fireTrigger(name);
        store.dispatch(showNotice('success', answer.job ? `Trigger ${name} submitted job ${answer.job}.` : `Trigger ${name} is busy: one more run follows.`));
      } else if (verb === 'pause') {
        await api.pauseTrigger(name);
      } else {
        await api.resumeTrigger(name);
      }
    } catch (error) {
      store.dispatch(showNotice('error', `Could not ${verb === 'fire' ? 'fire' : verb} trigger ${name}: ${error.message}`));
    } finally {
      store.dispatch({ type: 'triggers/busy', name, busy: false });
    }
  }

  function createCard(name) {
    const kind = h('span', { class: 'badge badge-small trigger-kind', dataset: { testid: 'kind' } });
    const pausedBadge = h('span', { class: 'badge badge-paused', dataset: { testid: 'paused' } }, 'paused');
    const fire = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Fire now: trigger ${name}`, onclick: () => act(name, 'fire') }, 'Fire now');
    const pause = h('button', { type: 'button', class: 'btn btn-small btn-ghost', dataset: { testid: 'pause' } }, 'Pause');
    pause.addEventListener('click', () => {
      const trigger = store.getState().triggers.byName[name];
      if (trigger) act(name, trigger.paused ? 'resume' : 'pause');
    });
    const steps = STATES.map((state) => h('li', { class: 'trigger-step', dataset: { state }, title: STATE_HELP[state] }, state));
    const machine = h('ol', { class: 'trigger-machine', dataset: { testid: 'machine' }, 'aria-label': 'State' }, steps);
    const stoked = h('span', { class: 'badge badge-small trigger-stoked', dataset: { testid: 'stoked' }, title: 'a change came while it ran: exactly one more run follows' }, 'stoked: one more run');
    const what = h('p', { class: 'trigger-what mono small', dataset: { testid: 'what' } });
    const next = h('p', { class: 'small', dataset: { testid: 'next' } });
    const pendingTitle = h('h3', { class: 'small muted' });
    const pendingList = h('ul', { class: 'trigger-paths mono small', dataset: { testid: 'pending' } });
    const pending = h('div', { class: 'trigger-pending' }, pendingTitle, pendingList);
    const problem = h('p', { class: 'error-text small', role: 'alert', dataset: { testid: 'problem' } });
    const last = h('p', { class: 'small muted', dataset: { testid: 'last' } });
    const jobsList = h('ul', { class: 'trigger-jobs', dataset: { testid: 'trigger-jobs' } });
    const jobsLink = h('a', { href: '/jobs', class: 'small' }, 'All jobs →');
    const el = h(
      'section',
      { class: 'card trigger-card', dataset: { testid: `trigger-${name}` }, 'aria-label': `Trigger ${name}` },
      h('div', { class: 'queue-head' }, h('h2', { class: 'queue-name mono' }, name), kind, pausedBadge, h('span', { class: 'spacer' }), pause, fire),
      what,
      machine,
      stoked,
      next,
      pending,
      problem,
      last,
      h('div', { class: 'trigger-jobs-box' }, h('h3', { class: 'small muted' }, 'Newest jobs'), jobsList, jobsLink),
    );
    return { el, kind, pausedBadge, fire, pause, steps, machine, stoked, what, next, pendingTitle, pendingList, pending, problem, last, jobsList, trigger: null, lastJob: undefined };
  }

  function describe(trigger) {
    if (trigger.watch) {
      const w = trigger.watch;
      const patterns = w.patterns.length ? ` ${w.patterns.join(' ')}` : '';
      return `watches ${w.root}${patterns} → ${trigger.type} · debounce ${duration(w.debounce_ms)}, cooldown ${duration(w.cooldown_ms)}`;
    }
    if (trigger.schedule) return `${trigger.schedule.cron} (${trigger.schedule.timezone}) → ${trigger.type}`;
    if (trigger.webhook) return `POST ${trigger.webhook.url_path} (${trigger.webhook.signature}) → ${trigger.type}`;
    return trigger.type;
  }

  /** When it submits next, counting down. */
  function nextText(trigger, now) {
    const at = parseTime(trigger.next_fire_at);
    if (at === null) {
      if (trigger.kind === 'webhook') return 'Runs on each delivery.';
      if (trigger.paused && trigger.state === 'waiting') return 'Paused: runs when resumed.';
      return '';
    }
    const left = Math.max(0, at - now);
    const what = trigger.kind === 'schedule' ? 'Next fire' : trigger.state === 'cooldown' ? 'Cooldown ends' : 'Runs';
    const paused = trigger.paused && trigger.kind === 'schedule' ? ' (paused: skipped)' : '';
    return `${what} in ${duration(left)}${paused}`;
  }

  function updateCard(card, trigger, busy, jobs, now) {
    const changed = card.trigger !== trigger;
    card.trigger = trigger;
    if (changed) {
      setText(card.kind, trigger.kind);
      card.pausedBadge.hidden = !trigger.paused;
      card.el.classList.toggle('is-paused', trigger.paused);
      setText(card.pause, trigger.paused ? 'Resume' : 'Pause');
      setAttr(card.pause, 'aria-label', `${trigger.paused ? 'Resume' : 'Pause'} trigger ${trigger.name}`);
      setText(card.what, describe(trigger));
      card.machine.hidden = trigger.kind !== 'watch';
      card.el.dataset.state = trigger.state;
      for (const step of card.steps) {
        const current = step.dataset.state === trigger.state;
        step.classList.toggle('is-current', current);
        setAttr(step, 'aria-current', current ? 'step' : null);
      }
      card.stoked.hidden = !trigger.stoked;
      const paths = trigger.pending_paths || [];
      card.pending.hidden = !trigger.pending_everything && paths.length === 0;
      setText(card.pendingTitle, trigger.pending_everything
        ? 'Next run: everything (a full run)'
        : `Changed for the ${trigger.stoked ? 'run after this one' : 'next run'} (${trigger.pending_count})`);
      const shown = paths.slice(0, PATHS_SHOWN);
      const more = trigger.pending_count - shown.length;
      card.pendingList.replaceChildren(...shown.map((path) => h('li', null, path)), ...(more > 0 ? [h('li', { class: 'muted' }, `… and ${more} more`)] : []));
      card.problem.hidden = !trigger.problem;
      setText(card.problem, trigger.problem || '');
      const fired = trigger.last_fire_at ? `Last fired ${relative(trigger.last_fire_at, now)}` : 'Never fired';
      const changedAt = trigger.last_change_at ? ` · last change ${relative(trigger.last_change_at, now)}` : '';
      setText(card.last, `${fired}${changedAt}`);
      setAttr(card.last, 'title', trigger.last_fire_at ? exact(trigger.last_fire_at) : null);
      if (card.lastJob !== trigger.last_job || card.runningJob !== trigger.running_job) {
        card.lastJob = trigger.last_job;
        card.runningJob = trigger.running_job;
        loadJobs(trigger.name);
      }
    }
    card.fire.disabled = Boolean(busy);
    card.pause.disabled = Boolean(busy);
    setText(card.next, nextText(trigger, now));
    if (card.jobs !== jobs) {
      card.jobs = jobs;
      const rows = (jobs || []).slice(0, JOBS_SHOWN).map((job) => h('li', { class: 'trigger-job', dataset: { jobId: job.id } },
        h('a', { href: `/jobs/${encodeURIComponent(job.id)}`, class: 'mono' }, `#${job.id}`),
        statusBadge(job.status),
        h('span', { class: 'muted small', title: exact(job.created_at) }, relative(job.created_at, now))));
      card.jobsList.replaceChildren(...(rows.length ? rows : [h('li', { class: 'muted small' }, 'No jobs yet.')]));
    }
  }

  function update(state, prev) {
    const triggers = state.triggers;
    if (prev && prev.triggers === triggers) return;
    status.hidden = triggers.loaded && !triggers.error && triggers.order.length > 0;
    setText(status, triggers.error
      ? `Could not load triggers: ${triggers.error}`
      : triggers.loaded
        ? 'No triggers declared. Add [triggers.NAME] to the config: watch a directory, a cron schedule, or a webhook (docs/triggers.md).'
        : 'Loading triggers…');
    const now = Date.now();
    const keep = new Set();
    let cursor = list.firstChild;
    for (const name of triggers.order) {
      const trigger = triggers.byName[name];
      keep.add(name);
      let card = cards.get(name);
      if (!card) {
        card = createCard(name);
        cards.set(name, card);
      }
      if (card.el === cursor) cursor = cursor.nextSibling;
      else list.insertBefore(card.el, cursor);
      updateCard(card, trigger, triggers.busy[name], triggers.jobs[name], now);
    }
    for (const [name, card] of cards) {
      if (!keep.has(name)) {
        card.el.remove();
        cards.delete(name);
      }
    }
  }

  // Countdowns tick; the newest jobs are read again when the trigger's job changes (above)
  // and every 2 s for their statuses.
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const card of cards.values()) if (card.trigger) setText(card.next, nextText(card.trigger, now));
  }, 250);
  const jobsTimer = setInterval(() => {
    if (document.hidden) return;
    for (const name of cards.keys()) loadJobs(name);
  }, JOBS_REFRESH_MS);
  update(store.getState(), null);
  const unsubscribe = store.subscribe(update);
  return {
    el,
    destroy() {
      clearInterval(ticker);
      clearInterval(jobsTimer);
      unsubscribe();
    },
  };
}
