// The header: brand, navigation (wraps on narrow screens), connection state, sign-out.

import { h, setAttr, setText } from '../dom.js';
import { absoluteTimes, setAbsoluteTimes } from '../format.js';
import { createConnection } from './connection.js';

const LINKS = [
  { name: 'jobs', label: 'Jobs', href: '/jobs', match: ['jobs', 'job'] },
  { name: 'submit', label: 'Submit', href: '/submit', match: ['submit'] },
  { name: 'queues', label: 'Queues', href: '/queues', match: ['queues'] },
  { name: 'triggers', label: 'Triggers', href: '/triggers', match: ['triggers'] },
];

export function createHeader({ store, onSignOut }) {
  const connection = createConnection(store);
  const links = LINKS.map((link) => ({ ...link, el: h('a', { class: 'nav-link', href: link.href }, link.label) }));
  const signOut = h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => onSignOut() }, 'Sign out');
  const who = h('span', { class: 'header-user muted small', dataset: { testid: 'user' } });
  // Relative ("5m ago") or clock times, everywhere, kept across pages and visits.
  const times = h('button', { type: 'button', class: 'btn btn-ghost btn-small', onclick: () => {
    setAbsoluteTimes(!absoluteTimes());
    showTimes();
    store.dispatch({ type: 'times/changed' });
  } });
  function showTimes() {
    const absolute = absoluteTimes();
    setText(times, absolute ? 'Clock times' : 'Relative times');
    setAttr(times, 'aria-pressed', absolute ? 'true' : 'false');
    setAttr(times, 'title', absolute ? 'Show times as “5m ago”' : 'Show times as clock times');
  }
  showTimes();
  const el = h(
    'header',
    { class: 'app-header' },
    h('a', { class: 'brand', href: '/jobs', 'aria-label': 'runway home' }, h('img', { src: '/static/favicon.svg', alt: '', width: '20', height: '20' }), h('span', null, 'runway')),
    h('nav', { class: 'nav', 'aria-label': 'Main' }, links.map((link) => link.el)),
    h('div', { class: 'header-end' }, connection.el, who, times, signOut),
  );
  function update(state, prev) {
    if (!prev || prev.user !== state.user) {
      const user = state.user;
      setText(who, user ? `${user.name} · ${user.role}` : '');
      // Triggers' jobs are the server's: only admins see them.
      links.find((link) => link.name === 'triggers').el.hidden = Boolean(user && user.role !== 'admin');
    }
    if (prev && prev.route === state.route) return;
    for (const link of links) setAttr(link.el, 'aria-current', link.match.includes(state.route.name) ? 'page' : null);
    // The jobs link keeps the current filter, so coming back from a job keeps the view.
    if (state.route.name === 'jobs') links[0].el.href = `/jobs${location.search}`;
  }
  update(store.getState(), null);
  const unsubscribe = store.subscribe(update);
  return {
    el,
    destroy() {
      unsubscribe();
      connection.destroy();
    },
  };
}
