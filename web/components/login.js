// The sign-in form: the only thing shown without a session.

import { h, setText } from '../dom.js';

export function createLogin({ store, onSignIn }) {
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', spellcheck: 'false',
    placeholder: 'rwy_…', required: true, class: 'input mono',
  });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'login-card',
      onsubmit: (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) {
          showError('Enter the token that `runway serve` printed, or open the sign-in URL it printed.');
          return;
        }
        onSignIn(token);
      },
    },
    h('div', { class: 'login-brand' }, h('img', { src: '/static/favicon.svg', alt: '', width: '28', height: '28' }), h('span', null, 'runway')),
    h('h1', { class: 'login-title' }, 'Sign in'),
    h('p', { class: 'muted' }, 'Paste an API token. The browser keeps an HttpOnly session cookie; the token itself is not stored.'),
    h('div', { class: 'field' }, h('label', { for: 'token' }, 'Token'), input),
    error,
    button,
  );
  const el = h('main', { class: 'login' }, form);

  function showError(text) {
    setText(error, text);
    error.hidden = !text;
  }

  function update(state) {
    const auth = state.auth;
    button.disabled = auth.busy;
    setText(button, auth.busy ? 'Signing in…' : 'Sign in');
    showError(auth.error || '');
  }
  update(store.getState());
  const unsubscribe = store.subscribe((state, prev) => {
    if (state.auth !== prev.auth) update(state);
  });
  queueMicrotask(() => input.focus());
  return { el, destroy: unsubscribe };
}
