// The keyboard shortcuts, listed in a dialog (`?`).

import { h } from '../dom.js';

const SHORTCUTS = [
  ['/', 'search jobs'],
  ['j / k', 'next / previous job in the list'],
  ['↓ / ↑', 'the same, in the table (Tab enters it at one row)'],
  ['Enter', 'open the job'],
  ['x', 'select or unselect the job'],
  ['Space', 'select or unselect the job, in the table'],
  ['?', 'this list'],
  ['Esc', 'close a dialog'],
];

export function showShortcuts() {
  if (document.querySelector('dialog.shortcuts')) return;
  const close = h('button', { type: 'button', class: 'btn' }, 'Close');
  const dialog = h(
    'dialog',
    { class: 'dialog shortcuts', 'aria-labelledby': 'shortcuts-title' },
    h('h2', { id: 'shortcuts-title', class: 'dialog-title' }, 'Keyboard shortcuts'),
    h('dl', { class: 'shortcut-list' }, SHORTCUTS.map(([keys, what]) => [h('dt', null, h('kbd', null, keys)), h('dd', null, what)])),
    h('div', { class: 'dialog-actions' }, close),
  );
  // Focus goes back where it was, so the page's keys work at once.
  const before = document.activeElement;
  const done = () => {
    if (dialog.open) dialog.close();
    dialog.remove();
    if (before instanceof HTMLElement && before.isConnected) before.focus();
  };
  close.addEventListener('click', done);
  dialog.addEventListener('close', done);
  document.body.appendChild(dialog);
  dialog.showModal();
  close.focus();
}
