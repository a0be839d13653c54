import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test as base, expect, signIn, startServer, withTriggers } from '../fixtures.js';

const test = base.extend({
  server: async ({}, use) => {
    // A cooldown long enough to be seen.
    const server = await startServer((dir) => withTriggers(dir, { cooldown: '2s' }));
    await use(server);
    await server.stop();
  },
});

const card = (page, name) => page.getByTestId(`trigger-${name}`);
const current = (page, name) => card(page, name).locator('.trigger-step[aria-current="step"]');

test('the triggers page follows a watch trigger through its states live', async ({ page, server }) => {
  await signIn(page, server);
  await page.getByRole('link', { name: 'Triggers' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Triggers' })).toBeVisible();
  const notes = card(page, 'notes');
  await expect(notes.getByTestId('kind')).toHaveText('watch');
  await expect(current(page, 'notes')).toHaveText('idle');
  await expect(card(page, 'nightly').getByTestId('what')).toHaveText('0 3 * * * (Europe/Prague) → greet');
  await expect(card(page, 'nightly').getByTestId('next')).toContainText('Next fire in');

  writeFileSync(path.join(server.dir, 'notes', 'a.org'), '* one');
  await expect(current(page, 'notes')).toHaveText('waiting');
  await expect(notes.getByTestId('pending')).toHaveText('a.org');
  await expect(current(page, 'notes')).toHaveText('running');
  await expect(notes.getByTestId('stoked')).toBeHidden();
  const first = notes.getByTestId('trigger-jobs').locator('li[data-job-id]');
  await expect(first).toHaveCount(1);
  await expect(first.getByTestId('status')).toHaveText('running');

  // A save while it runs stokes one more run, listing the new path.
  writeFileSync(path.join(server.dir, 'notes', 'b.org'), '* two');
  await expect(notes.getByTestId('stoked')).toBeVisible();
  await expect(notes.getByTestId('pending')).toHaveText('b.org');

  writeFileSync(path.join(server.dir, 'release'), '');
  await expect(current(page, 'notes')).toHaveText('cooldown');
  await expect(notes.getByTestId('next')).toContainText('Cooldown ends in');
  // The one more run, after the cooldown.
  await expect(current(page, 'notes')).toHaveText('running');
  await expect(notes.getByTestId('stoked')).toBeHidden();
  writeFileSync(path.join(server.dir, 'release'), '');
  await expect(current(page, 'notes')).toHaveText('cooldown');
  await expect(current(page, 'notes')).toHaveText('idle');
  const jobs = notes.getByTestId('trigger-jobs').locator('li[data-job-id]');
  await expect(jobs).toHaveCount(2);
  await expect(jobs.getByTestId('status')).toHaveText(['succeeded', 'succeeded']);

  // The job says which trigger started it.
  await jobs.first().getByRole('link').click();
  await expect(page.getByTestId('trigger')).toHaveText('notes');
});

test('Fire now, Pause and Resume act on a trigger', async ({ page, server }) => {
  await signIn(page, server);
  await page.goto(`${server.url}/triggers`);
  const nightly = card(page, 'nightly');
  await nightly.getByRole('button', { name: 'Fire now' }).click();
  await expect(page.getByText(/Trigger nightly submitted job \d+\./)).toBeVisible();
  const job = nightly.getByTestId('trigger-jobs').locator('li[data-job-id]');
  await expect(job).toHaveCount(1);
  await expect(job.getByTestId('status')).toHaveText('succeeded');

  await nightly.getByTestId('pause').click();
  await expect(nightly.getByTestId('paused')).toBeVisible();
  await expect(nightly.getByTestId('pause')).toHaveText('Resume');
  await expect(nightly.getByTestId('next')).toContainText('(paused: skipped)');
  const view = await server.api.request('GET', '/v1/triggers/nightly');
  expect(view.paused).toBe(true);
  await nightly.getByTestId('pause').click();
  await expect(nightly.getByTestId('paused')).toBeHidden();
  await expect(nightly.getByTestId('pause')).toHaveText('Pause');
});
