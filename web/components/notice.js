// A toast for the outcome of actions ("Cancelled 12 jobs; 3 were already finished").

import { h, setText } from '../dom.js';

export function createNotice({ store }) {
  const text = h('span', { class: 'notice-text' });
  const close = h('button', { type: 'button', class: 'btn btn-ghost btn-small notice-close', 'aria-label': 'Dismiss', onclick: () => store.dispatch({ type: 'notice/clear' }) }, '×');
  const box = h('div', { class: 'notice', hidden: true }, text, close);
  const el = h('div', { class: 'notice-region', role: 'status', 'aria-live': 'polite' }, box);
  let timer = null;
  function update(state, prev) {
    if (prev && prev.notice === state.notice) return;
    clearTimeout(timer);
    const notice = state.notice;
    box.hidden = !notice;
    if (!notice) return;
    box.dataset.kind = notice.kind;
    setText(text, notice.text);
    timer = setTimeout(() => store.dispatch({ type: 'notice/clear' }), notice.kind === 'error' ? 10000 : 6000);
  }
  update(store.getState(), null);
  const unsubscribe = store.subscribe(update);
  return {
    el,
    destroy() {
      clearTimeout(timer);
      unsubscribe();
    },
  };
}
