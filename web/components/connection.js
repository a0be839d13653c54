// The connection indicator in the header: Live / Reconnecting… / Offline (detail in the title).

import { h, setAttr, setText } from '../dom.js';

const LABELS = { live: 'Live', connecting: 'Reconnecting…', reconnecting: 'Reconnecting…', offline: 'Offline' };

export function createConnection(store) {
  const label = h('span', { class: 'connection-label', dataset: { testid: 'connection' } });
  const el = h('span', { class: 'connection', role: 'status' }, h('span', { class: 'connection-dot', 'aria-hidden': 'true' }), label);
  function update(state, prev) {
    const connection = state.connection;
    if (prev && prev.connection === connection) return;
    const text = LABELS[connection.status] || 'Offline';
    setText(label, text);
    el.dataset.state = connection.status === 'connecting' ? 'reconnecting' : connection.status;
    let title = connection.detail || text;
    if (connection.status === 'reconnecting' && connection.attempt) title = `Reconnecting (attempt ${connection.attempt}): ${connection.detail}`;
    setAttr(label, 'title', title);
    setAttr(el, 'title', title);
  }
  update(store.getState(), null);
  const unsubscribe = store.subscribe(update);
  return { el, destroy: unsubscribe };
}
