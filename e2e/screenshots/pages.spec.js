// The README's pictures: every page of the dashboard with realistic jobs, in both themes and
// at phone width. Run with `npm run screenshots` in e2e/ after `cargo build`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync, writeFileSync } from 'node:fs';
import { test, expect, signIn, startServer, withTriggers } from '../fixtures.js';

const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');
const shot = (page, name, options = {}) =>
  page.screenshot({ path: path.join(out, `${name}.png`), ...options });

test('every page', async ({ page, server }) => {
  const api = server.api;
  const done = [];
  for (const name of ['Ada', 'Grace', 'Linus', 'Margaret']) {
    done.push(await api.submit('greet', { name, times: 2, color: 'green', tags: ['demo'] }));
  }
  const failed = await api.submit('broken', null);
  for (const job of [...done, failed]) await api.finished(job.id);
  await api.submit('steps', { scene: 'opening titles' });
  await api.submit('steps', { scene: 'credits' });
  await api.submit('hold', null);
  await api.request('POST', '/v1/queues/renders/pause');
  await api.submit('steps', { scene: 'waiting for a free GPU' });
  await api.request('POST', '/v1/queues/renders/resume');

  await page.goto(`${server.url}/`);
  await expect(page.getByLabel('Token')).toBeVisible();
  await shot(page, 'sign-in');

  await signIn(page, server);
  await expect(page.locator('[data-testid="status"]', { hasText: 'running' }).first()).toBeVisible();
  await page.waitForTimeout(2500);
  await shot(page, 'jobs');

  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, 'jobs-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  // A job that failed once and succeeded on its second attempt: the log split by attempt,
  // stderr in its own colour, with times.
  const encode = await api.submit('shell', {
    command: 'for part in 1 2 3; do echo "encoding part $part of 3"; sleep 0.3; done; '
      + 'echo "warning: bitrate capped at 320k" >&2; '
      + 'test "$RUNWAY_ATTEMPT" = 2 || { echo "error: scratch disk busy" >&2; exit 1; }; echo "wrote episode.mp3"',
  }, { max_attempts: 2 });
  await api.finished(encode.id, 60_000);
  await page.goto(`${server.url}/jobs/${encode.id}`);
  await expect(page.getByTestId('log').locator('.log-attempt')).toHaveCount(2);
  await page.getByRole('button', { name: 'Times in the log' }).click();
  await shot(page, 'job-detail');

  await page.goto(`${server.url}/submit`);
  await page.getByLabel('Type').selectOption('greet');
  await page.getByLabel('name', { exact: true }).fill('Ada');
  await page.getByLabel('times', { exact: true }).fill('9');
  await page.getByRole('button', { name: 'Add tags item' }).click();
  await page.getByLabel('tags 1', { exact: true }).fill('portrait');
  await page.getByRole('button', { name: 'Submit job' }).click();
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'submit', { fullPage: true });

  for (let i = 0; i < 6; i++) await api.submit('greet', { name: `batch ${i}` });
  await page.goto(`${server.url}/queues`);
  await expect(page.getByTestId('history-readout')).toContainText('succeeded');
  await page.waitForTimeout(2500);
  await shot(page, 'queues', { fullPage: true });

  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${server.url}/`);
  await expect(page.getByTestId('jobs-table')).toBeVisible();
  await page.waitForTimeout(500);
  await shot(page, 'jobs-phone');
});

test('the blogcast: a post, its paragraphs and the episode', async ({ page }) => {
  // The example as it is, its scripts found where they live.
  const example = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'blogcast');
  const config = readFileSync(path.join(example, 'runway.toml'), 'utf8').replaceAll('cwd = "."', `cwd = ${JSON.stringify(example)}`);
  const server = await startServer(config);
  try {
    const post = await server.api.submit('blogcast', {
      title: 'Job trees',
      text: 'A blogcast splits a post into paragraphs.\n\nEach paragraph is read aloud on the GPU queue, one at a time.\n\nThen the join puts the episode together.\n\nAnd you listen to it right here.',
    });
    await server.api.finished(post.id, 60_000);
    await signIn(page, server);
    await page.goto(`${server.url}/jobs/${post.id}`);
    await expect(page.getByTestId('tree-summary')).toHaveText('4 of 4 finished · 4 succeeded');
    await expect.poll(() => page.getByTestId('artifact-audio').evaluate((audio) => audio.duration)).toBeGreaterThan(1);
    await shot(page, 'blogcast', { fullPage: true });
  } finally {
    await server.stop();
  }
});

test('the triggers page: a watch trigger running and stoked, beside a schedule', async ({ page }) => {
  const server = await startServer((dir) => withTriggers(dir, { cooldown: '30s' }));
  try {
    await signIn(page, server);
    await page.goto(`${server.url}/triggers`);
    const notes = page.getByTestId('trigger-notes');
    await expect(notes.getByTestId('kind')).toHaveText('watch');
    writeFileSync(path.join(server.dir, 'notes', 'ideas.org'), '* one');
    await expect(notes.locator('.trigger-step[aria-current="step"]')).toHaveText('running');
    writeFileSync(path.join(server.dir, 'notes', 'todo.org'), '* two');
    writeFileSync(path.join(server.dir, 'notes', 'reading.org'), '* three');
    await expect(notes.getByTestId('pending')).toContainText('todo.org');
    await page.getByTestId('trigger-nightly').getByRole('button', { name: 'Fire now' }).click();
    await expect(page.getByTestId('trigger-nightly').getByTestId('trigger-jobs').locator('li[data-job-id]')).toHaveCount(1);
    await page.waitForTimeout(500);
    await shot(page, 'triggers', { fullPage: true });
  } finally {
    await server.stop();
  }
});
