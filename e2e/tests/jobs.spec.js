import { test, expect, signIn } from '../fixtures.js';

const row = (page, id) => page.locator(`[data-testid="jobs-table"] tr[data-job-id="${id}"]`);

test('filters and search narrow the live table and live in the URL', async ({ page, server }) => {
  const ada = await server.api.submit('greet', { name: 'Ada Lovelace' });
  const bob = await server.api.submit('greet', { name: 'Bob' });
  const broken = await server.api.submit('broken', null);
  await server.api.finished(ada.id);
  await server.api.finished(bob.id);
  await server.api.finished(broken.id);

  await signIn(page, server);
  for (const job of [ada, bob, broken]) await expect(row(page, job.id)).toBeVisible();

  // Status filter: only the failed job, and the URL says so.
  await page.getByRole('button', { name: 'failed', exact: true }).click();
  await expect(page.getByRole('button', { name: 'failed', exact: true })).toHaveAttribute('aria-pressed', 'true');
  await expect(row(page, broken.id)).toBeVisible();
  await expect(row(page, ada.id)).toHaveCount(0);
  expect(new URL(page.url()).searchParams.get('status')).toBe('failed');
  await expect(row(page, broken.id).getByTestId('status')).toHaveText('failed');
  await page.getByRole('button', { name: 'failed', exact: true }).click();

  // Search by input text, by type and by id; `/` focuses the search box.
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('/');
  await expect(page.getByLabel('Search')).toBeFocused();
  await page.keyboard.type('lovelace');
  await expect(row(page, ada.id)).toBeVisible();
  await expect(row(page, bob.id)).toHaveCount(0);
  await expect(row(page, broken.id)).toHaveCount(0);
  await expect.poll(() => new URL(page.url()).searchParams.get('q')).toBe('lovelace');

  await page.getByLabel('Search').fill(bob.id);
  await expect(row(page, bob.id)).toBeVisible();
  await expect(row(page, ada.id)).toHaveCount(0);

  // A bookmarked view: the same URL in a fresh load shows the same rows.
  await page.getByLabel('Search').fill('');
  await page.getByLabel('Type').selectOption('broken');
  await expect(row(page, broken.id)).toBeVisible();
  await expect(row(page, ada.id)).toHaveCount(0);
  await expect.poll(() => new URL(page.url()).searchParams.get('type')).toBe('broken');
  const shared = page.url();
  await page.goto('about:blank');
  await page.goto(shared);
  await expect(row(page, broken.id)).toBeVisible();
  await expect(row(page, ada.id)).toHaveCount(0);
  await expect(page.getByLabel('Type')).toHaveValue('broken');

  // New jobs that match appear without a reload; others do not. The job that does not match
  // runs to its end first, so by the time the matching one shows, every change of the other
  // one has been through the session too: its absence then means something.
  const other = await server.api.submit('greet', { name: 'Eve' });
  await server.api.finished(other.id);
  const later = await server.api.submit('broken', null);
  await expect(row(page, later.id)).toBeVisible();
  await expect(row(page, later.id).getByTestId('status')).toHaveText('failed');
  await expect(row(page, other.id)).toHaveCount(0);
});

test('a running job is cancelled from its detail page, after a confirmation', async ({ page, server }) => {
  const job = await server.api.submit('hold', null);
  await signIn(page, server);
  await row(page, job.id).click();
  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('status')).toHaveText('running');
  await expect(detail.getByTestId('log')).toContainText('started');
  await page.getByRole('button', { name: 'Cancel job' }).click();
  // A running job is cancelled only once confirmed: Cancel keeps it running.
  const confirm = page.getByRole('dialog');
  await expect(confirm).toContainText(`Cancel job ${job.id}?`);
  await expect(confirm).toContainText('SIGTERM');
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(detail.getByTestId('status')).toHaveText('running');
  await page.getByRole('button', { name: 'Cancel job' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(detail.getByTestId('status')).toHaveText('cancelled');
  expect((await server.api.job(job.id)).status).toBe('cancelled');
  await expect(page.getByRole('button', { name: 'Cancel job' })).toHaveCount(0);
  await expect(detail.getByTestId('timeline')).toContainText('cancelled');
});

test('every column header of the jobs table has the same colour', async ({ page, server }) => {
  const job = await server.api.submit('greet', { name: 'Headers' });
  await server.api.finished(job.id);
  await signIn(page, server);
  await expect(row(page, job.id)).toBeVisible();
  const colours = await page.locator('[data-testid="jobs-table"] thead th').evaluateAll(
    (headers) => headers.map((header) => getComputedStyle(header).color));
  expect(colours.length).toBeGreaterThan(5);
  expect(new Set(colours).size, `header colours: ${colours.join(', ')}`).toBe(1);
});

test('a job without output that ends while its page is open says it has none', async ({ page, server }) => {
  const job = await server.api.submit('steps', { scene: 'quiet' });
  await signIn(page, server);
  await row(page, job.id).click();
  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('status')).toHaveText('running');
  await expect(detail.getByTestId('output')).toHaveText('No output yet.');
  await expect(detail.getByTestId('status')).toHaveText('succeeded', { timeout: 15_000 });
  await expect(detail.getByTestId('output')).toHaveText('No output.');
});

test('a job detail shows input, output, log, timeline, and retries the job', async ({ page, server }) => {
  const job = await server.api.submit('greet', { name: 'Grace', tags: ['navy', 'cobol'] });
  await server.api.finished(job.id);
  await signIn(page, server);
  await row(page, job.id).click();
  await expect(page).toHaveURL(new RegExp(`/jobs/${job.id}$`));
  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('status')).toHaveText('succeeded');
  await expect(detail.getByTestId('input')).toContainText('Grace');
  await expect(detail.getByTestId('input')).toContainText('cobol');
  await expect(detail.getByTestId('output')).toContainText('greeted');
  await expect(detail.getByTestId('log')).toContainText('greeting {"name":"Grace"');
  const timeline = detail.getByTestId('timeline').locator('li');
  // Newest first: the outcome shows without scrolling; times count from the submit.
  await expect(timeline).toHaveCount(3);
  await expect(timeline.nth(0)).toContainText('succeeded');
  await expect(timeline.nth(0)).toContainText('+');
  await expect(timeline.nth(1)).toContainText('started');
  await expect(timeline.nth(2)).toContainText('submitted');

  await page.getByRole('button', { name: 'Retry' }).click();
  await expect(page).not.toHaveURL(new RegExp(`/jobs/${job.id}$`));
  const again = page.getByTestId('job-detail');
  await expect(again.getByTestId('status')).toHaveText('succeeded');
  await expect(again.getByTestId('input')).toContainText('Grace');
  const newId = page.url().split('/').pop();
  expect((await server.api.job(newId)).retry_of).toBe(job.id);

  // The retry links back to the original, and the original on to its retry.
  await page.getByRole('link', { name: `#${job.id}` }).click();
  await expect(page).toHaveURL(new RegExp(`/jobs/${job.id}$`));
  await page.getByRole('link', { name: `#${newId}`, exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/jobs/${newId}$`));
});

test('a failed job shows its error and the attempts it used', async ({ page, server }) => {
  const job = await server.api.submit('broken', null);
  await server.api.finished(job.id);
  await signIn(page, server);
  await page.goto(`${server.url}/jobs/${job.id}`);
  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('status')).toHaveText('failed');
  await expect(detail.getByTestId('error')).toContainText('exited with status 3');
  await expect(detail).toContainText('1/1');
  await expect(detail.getByTestId('log')).toContainText('about to fail');
});

test('several jobs are cancelled at once, and all matching the filter are retried after a confirmation', async ({ page, server }) => {
  const holds = [];
  for (let i = 0; i < 3; i++) holds.push(await server.api.submit('hold', null, { queue: 'renders' }));
  await signIn(page, server);
  for (const job of holds) await expect(row(page, job.id)).toBeVisible();

  // Select two rows, cancel them after a confirmation; the third keeps running.
  await row(page, holds[0].id).getByRole('checkbox').check();
  await row(page, holds[1].id).getByRole('checkbox').check();
  await page.getByRole('button', { name: 'Cancel selected' }).click();
  const confirmCancel = page.getByRole('dialog');
  await expect(confirmCancel).toContainText('Cancel 2 selected jobs?');
  await expect(confirmCancel).toContainText('Running jobs are stopped');
  await confirmCancel.getByRole('button', { name: 'Confirm' }).click();
  await expect(confirmCancel).toHaveCount(0);
  await expect(page.getByText(/Cancelled 2 jobs/)).toBeVisible();
  await expect(row(page, holds[0].id).getByTestId('status')).toHaveText('cancelled');
  await expect(row(page, holds[1].id).getByTestId('status')).toHaveText('cancelled');
  await expect(row(page, holds[2].id).getByTestId('status')).toHaveText(/running|queued/);

  // All cancelled jobs of type hold: a count, a confirmation, then one new job each.
  await page.getByRole('button', { name: 'cancelled', exact: true }).click();
  await expect(row(page, holds[2].id)).toHaveCount(0);
  await page.getByRole('button', { name: /Select all/ }).click();
  await page.getByRole('button', { name: 'Retry selected' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('2');
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByText(/Retried 2 jobs/)).toBeVisible();
  const list = await server.api.request('GET', '/v1/jobs?type=hold');
  const retried = list.jobs.filter((job) => job.retry_of).map((job) => job.retry_of).sort();
  expect(retried).toEqual([holds[0].id, holds[1].id].sort());
  await server.api.request('POST', '/v1/jobs/bulk', { action: 'cancel', filter: { type: ['hold'] } });
});

test('job data is shown as text, never run as HTML', async ({ page, server }) => {
  const hostile = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
  const job = await server.api.submit('greet', { name: hostile, tags: [hostile] });
  await server.api.finished(job.id);
  await signIn(page, server);
  await page.getByLabel('Search').fill('onerror');
  await expect(row(page, job.id)).toBeVisible();
  await row(page, job.id).click();
  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('input')).toContainText('<script>window.__pwned = 1</script>');
  await expect(detail.getByTestId('input')).toContainText('<img src=x onerror=');
  await expect(detail.getByTestId('log')).toContainText('<img src=x onerror=\\"window.__pwned = 2\\">');
  await expect(detail.getByTestId('log')).toContainText('<script>');
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  await expect(page.locator('img[src="x"]')).toHaveCount(0);
  await expect(page.locator('[data-testid="job-detail"] script')).toHaveCount(0);
});

test('the cancel confirmation’s Cancel button and Esc change nothing', async ({ page, server }) => {
  const holds = [await server.api.submit('hold', null), await server.api.submit('hold', null)];
  await signIn(page, server);
  for (const job of holds) {
    await expect(row(page, job.id).getByTestId('status')).toHaveText('running');
    await row(page, job.id).getByRole('checkbox').check();
  }
  const dialog = page.getByRole('dialog');

  await page.getByRole('button', { name: 'Cancel selected' }).click();
  await expect(dialog).toContainText('Cancel 2 selected jobs?');
  await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
  await expect(dialog).toHaveCount(0);

  await page.getByRole('button', { name: 'Cancel selected' }).click();
  await expect(dialog).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);

  // Still selected, still running.
  await expect(page.getByText('2 jobs selected')).toBeVisible();
  for (const job of holds) {
    expect((await server.api.job(job.id)).status).toBe('running');
    await expect(row(page, job.id).getByTestId('status')).toHaveText('running');
  }
  // Confirming now cancels both: neither was cancelled before (the notice would count them as
  // already finished).
  await page.getByRole('button', { name: 'Cancel selected' }).click();
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByText('Cancelled 2 jobs', { exact: true })).toBeVisible();
  for (const job of holds) await expect(row(page, job.id).getByTestId('status')).toHaveText('cancelled');
});

test('“Load older” appends the older jobs; changes to jobs below the loaded page add no rows', async ({ page, server }) => {
  // A paused queue keeps the 130 jobs queued: nothing changes unless the test says so.
  await server.api.request('POST', '/v1/queues/default/pause');
  const { jobs } = await server.api.request('POST', '/v1/jobs/batch', {
    jobs: Array.from({ length: 130 }, (_, i) => ({ type: 'greet', input: { name: `job ${i}` } })),
  });
  const oldest = jobs[0];
  const newest = jobs[jobs.length - 1];
  await signIn(page, server);
  const rows = page.locator('[data-testid="jobs-table"] tbody tr[data-job-id]');
  await expect(rows).toHaveCount(100);
  await expect(rows.first()).toHaveAttribute('data-job-id', newest.id);
  const loadOlder = page.getByRole('button', { name: 'Load older' });
  await expect(loadOlder).toBeVisible();

  // The oldest job changes, then a loaded one: once the second shows, the first has been
  // through too, and it did not become a row (it is below the loaded page).
  await server.api.request('POST', `/v1/jobs/${oldest.id}/cancel`);
  await server.api.request('POST', `/v1/jobs/${newest.id}/cancel`);
  await expect(row(page, newest.id).getByTestId('status')).toHaveText('cancelled');
  await expect(row(page, oldest.id)).toHaveCount(0);
  await expect(rows).toHaveCount(100);

  // A new job is newer than everything held: it shows, at the top.
  const fresh = await server.api.submit('greet', { name: 'fresh' });
  await expect(rows.first()).toHaveAttribute('data-job-id', fresh.id);
  await expect(rows).toHaveCount(101);

  await loadOlder.click();
  await expect(rows).toHaveCount(131);
  await expect(rows.last()).toHaveAttribute('data-job-id', oldest.id);
  await expect(row(page, oldest.id).getByTestId('status')).toHaveText('cancelled');
  await expect(loadOlder).toBeHidden();
  await expect(page.getByText('131 of 131 jobs')).toBeVisible();
});

test('a burst of new jobs keeps the table to its live window; Load older continues from the cut', async ({ page, server }) => {
  await server.api.request('POST', '/v1/queues/renders/pause');
  await signIn(page, server);
  await expect(page.getByTestId('jobs-table')).toBeVisible();
  const jobs = Array.from({ length: 350 }, (_, n) => ({ type: 'steps', input: { scene: `shot ${n}` } }));
  const { jobs: made } = await server.api.request('POST', '/v1/jobs/batch', { jobs });
  const newest = made[made.length - 1].id;
  const oldest = made[0].id;
  await expect(row(page, newest)).toBeVisible();
  await expect(page.locator('[data-testid="jobs-table"] tr[data-job-id]')).toHaveCount(300);
  await expect(row(page, oldest)).toHaveCount(0);
  await page.getByRole('button', { name: 'Load older' }).click();
  await expect(page.locator('[data-testid="jobs-table"] tr[data-job-id]')).toHaveCount(350);
  await expect(row(page, oldest)).toBeVisible();
  await server.api.request('POST', '/v1/jobs/bulk', { action: 'cancel', filter: { type: ['steps'] } });
});

test('an older page stays live: a job loaded with “Load older” that leaves the filter shows its new status', async ({ page, server }) => {
  await server.api.request('POST', '/v1/queues/renders/pause');
  const { jobs } = await server.api.request('POST', '/v1/jobs/batch', {
    jobs: Array.from({ length: 120 }, (_, i) => ({ type: 'steps', input: { scene: `take ${i}` } })),
  });
  const oldest = jobs[0];
  await signIn(page, server);
  await page.getByRole('button', { name: 'queued', exact: true }).click();
  const rows = page.locator('[data-testid="jobs-table"] tbody tr[data-job-id]');
  await expect(rows).toHaveCount(100);
  await page.getByRole('button', { name: 'Load older' }).click();
  await expect(rows).toHaveCount(120);
  await expect(row(page, oldest.id).getByTestId('status')).toHaveText('queued');
  // Cancelled, it no longer matches "queued"; the row shows what became of it.
  await server.api.request('POST', `/v1/jobs/${oldest.id}/cancel`);
  await expect(row(page, oldest.id).getByTestId('status')).toHaveText('cancelled');
  await server.api.request('POST', '/v1/jobs/bulk', { action: 'cancel', filter: { type: ['steps'] } });
});

test('a large input is previewed in live messages and shown whole on the job page', async ({ page, server }) => {
  const name = `${'x'.repeat(20000)}THE-END`;
  const job = await server.api.submit('greet', { name });
  await server.api.finished(job.id);
  await signIn(page, server);
  await row(page, job.id).click();
  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('status')).toHaveText('succeeded');
  await expect(detail.getByTestId('input')).toContainText('THE-END');
  await expect(detail.getByText('A preview of a large input')).toHaveCount(0);
});

test('the summary counts only the rows that match the filter, live and after a bulk cancel', async ({ page, server }) => {
  const holds = [];
  for (let i = 0; i < 3; i++) holds.push(await server.api.submit('hold', null));
  await signIn(page, server);
  await page.getByRole('button', { name: 'running', exact: true }).click();
  for (const job of holds) await expect(row(page, job.id).getByTestId('status')).toHaveText('running');
  await expect(page.getByTestId('summary')).toHaveText('3 of 3 jobs');

  // Jobs failing live under a "failed" filter: the rows and the count agree as they come.
  await page.getByRole('button', { name: 'running', exact: true }).click();
  await page.getByRole('button', { name: 'failed', exact: true }).click();
  await expect(page.getByTestId('summary')).toHaveText('0 of 0 jobs');
  const broken = [];
  for (let i = 0; i < 4; i++) broken.push(await server.api.submit('broken', null));
  for (const job of broken) await server.api.finished(job.id);
  for (const job of broken) await expect(row(page, job.id)).toBeVisible();
  await expect(page.getByTestId('summary')).toHaveText('4 of 4 jobs');

  // Back to running: all matching are cancelled; their rows stay, dimmed, and are not counted.
  await page.getByRole('button', { name: 'failed', exact: true }).click();
  await page.getByRole('button', { name: 'running', exact: true }).click();
  await expect(page.getByTestId('summary')).toHaveText('3 of 3 jobs');
  await page.getByRole('button', { name: /Select all/ }).click();
  await page.getByRole('button', { name: 'Cancel selected' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByText(/Cancelled 3 jobs/)).toBeVisible();
  for (const job of holds) await expect(row(page, job.id)).toHaveClass(/row-stale/);
  await expect(page.getByTestId('summary')).toHaveText('0 of 0 jobs');
});

test('the keyboard moves through the jobs, opens one, selects one, and lists the shortcuts', async ({ page, server }) => {
  const jobs = [];
  for (const name of ['One', 'Two', 'Three']) jobs.push(await server.api.submit('greet', { name }));
  for (const job of jobs) await server.api.finished(job.id);
  await signIn(page, server);
  for (const job of jobs) await expect(row(page, job.id)).toBeVisible();

  // j goes down from the newest, k back up; x selects the row it is on.
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('j');
  await expect(row(page, jobs[2].id)).toHaveClass(/row-cursor/);
  await page.keyboard.press('j');
  await expect(row(page, jobs[1].id)).toHaveClass(/row-cursor/);
  await expect(row(page, jobs[2].id)).not.toHaveClass(/row-cursor/);
  await page.keyboard.press('x');
  await expect(row(page, jobs[1].id).getByRole('checkbox')).toBeChecked();
  await expect(page.getByText('1 job selected')).toBeVisible();
  await page.keyboard.press('k');
  await expect(row(page, jobs[2].id)).toHaveClass(/row-cursor/);

  // Enter opens the job the keyboard is on.
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(new RegExp(`/jobs/${jobs[2].id}$`));
  await expect(page.getByTestId('job-detail').getByTestId('status')).toHaveText('succeeded');

  // ? lists the shortcuts, on any page; Esc closes the list.
  await page.keyboard.press('?');
  const shortcuts = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await expect(shortcuts).toContainText('open the job');
  await page.keyboard.press('Escape');
  await expect(shortcuts).toHaveCount(0);
});

test('a first run says how to submit a job; the skip link passes the header', async ({ page, server }) => {
  await signIn(page, server);
  const empty = page.locator('.table-empty');
  await expect(empty).toContainText('No jobs yet');
  await expect(empty).toContainText('runway add -- echo hello');
  await expect(empty.getByRole('link', { name: 'the form' })).toHaveAttribute('href', '/submit');
  await page.getByRole('button', { name: 'failed', exact: true }).click();
  await expect(empty).toHaveText('No jobs match this filter.');

  // On a fresh load, the first Tab reaches the skip link.
  await page.reload();
  await expect(page.getByTestId('connection')).toHaveText('Live');
  await page.keyboard.press('Tab');
  const skip = page.getByRole('link', { name: 'Skip to content' });
  await expect(skip).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.locator('main#main')).toBeFocused();
});

test('each status chip counts its jobs under the other filters, live; waiting shows once something can wait', async ({ page, server }) => {
  const done = [];
  for (const name of ['A', 'B']) done.push(await server.api.submit('greet', { name }));
  const broken = await server.api.submit('broken', null);
  for (const job of [...done, broken]) await server.api.finished(job.id);
  await signIn(page, server);
  await expect(page.getByTestId('count-succeeded')).toHaveText('2');
  await expect(page.getByTestId('count-failed')).toHaveText('1');
  await expect(page.getByTestId('count-running')).toHaveText('0');
  await expect(page.getByRole('button', { name: 'waiting', exact: true })).toBeHidden();

  // Live: a new failure counts without a reload.
  const again = await server.api.submit('broken', null);
  await server.api.finished(again.id);
  await expect(page.getByTestId('count-failed')).toHaveText('2');

  // The type filter narrows the counts; the status filter does not.
  await page.getByLabel('Type').selectOption('greet');
  await expect(page.getByTestId('count-failed')).toHaveText('0');
  await expect(page.getByTestId('count-succeeded')).toHaveText('2');
  await page.getByRole('button', { name: 'succeeded', exact: true }).click();
  await expect(page.getByTestId('count-failed')).toHaveText('0');
  await expect(page.getByTestId('count-succeeded')).toHaveText('2');
  await page.getByRole('button', { name: 'succeeded', exact: true }).click();
  await page.getByLabel('Type').selectOption('');

  // A job with children waits for them: the waiting chip appears.
  await server.api.submit('greet', { name: 'Parent' }, { children: [{ type: 'hold', input: null }] });
  await expect(page.getByRole('button', { name: 'waiting', exact: true })).toBeVisible();
  await expect(page.getByTestId('count-waiting')).toHaveText('1');
  await server.api.request('POST', '/v1/jobs/bulk', { action: 'cancel', filter: { type: ['hold'] } });
});

test('a job page downloads the whole log, wraps it or not, and expands, collapses or shows raw JSON', async ({ page, server }) => {
  const job = await server.api.submit('greet', { name: 'Ada', size: { width: 2, height: 3 }, tags: ['a', 'b'] });
  await server.api.finished(job.id);
  await signIn(page, server);
  await page.goto(`${server.url}/jobs/${job.id}`);
  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('log')).toContainText('greeting');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
  expect(download.suggestedFilename()).toBe(`job-${job.id}.log`);
  const text = await (await download.createReadStream()).toArray();
  expect(Buffer.concat(text).toString()).toContain('greeting');

  await page.getByRole('button', { name: 'Wrap' }).click();
  await expect(page.getByRole('button', { name: 'Wrap' })).toHaveAttribute('aria-pressed', 'false');
  await expect(detail.getByTestId('log')).toHaveClass(/log-nowrap/);

  const input = detail.getByTestId('input');
  await input.getByRole('button', { name: 'Collapse all' }).click();
  await expect(input.locator('details[open]')).toHaveCount(0);
  await input.getByRole('button', { name: 'Expand all' }).click();
  await expect(input.locator('details:not([open])')).toHaveCount(0);
  await expect(input.getByTestId('json')).toContainText('"height"');
  await input.getByRole('button', { name: 'Raw' }).click();
  await expect(input.locator('pre.json-raw')).toBeVisible();
  await expect(input.locator('pre.json-raw')).toContainText('"width": 2');
});

test('a scheduled job says when it runs', async ({ page, server }) => {
  const later = new Date(Date.now() + 3 * 3600 * 1000).toISOString();
  const job = await server.api.submit('greet', { name: 'Later' }, { run_at: later });
  await signIn(page, server);
  await page.goto(`${server.url}/jobs/${job.id}`);
  await expect(page.getByTestId('job-detail').getByTestId('status')).toHaveText('scheduled');
  await expect(page.getByTestId('runs-at')).toContainText(/in (2|3)h/);
  await server.api.request('POST', `/v1/jobs/${job.id}/cancel`, {});
  await expect(page.getByTestId('job-detail').getByTestId('status')).toHaveText('cancelled');
  await expect(page.getByTestId('runs-at')).toBeHidden();
});

test('each row previews its input, and a queue button says which queue it acts on', async ({ page, server }) => {
  const job = await server.api.submit('greet', { name: 'Preview Person' });
  await server.api.finished(job.id);
  await signIn(page, server);
  await expect(row(page, job.id).getByTestId('preview')).toHaveText('{"name":"Preview Person"}');
  await page.getByRole('link', { name: 'Queues' }).click();
  await expect(page.getByRole('button', { name: 'Pause queue renders' })).toBeVisible();
});

test('a search shows in each row the part of the input it matched', async ({ page, server }) => {
  const job = await server.api.submit('greet', { name: 'Ada', tags: ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta-needle-here'] });
  await server.api.finished(job.id);
  await signIn(page, server);
  await page.getByLabel('Search').fill('needle');
  const preview = row(page, job.id).getByTestId('preview');
  await expect(preview.locator('mark')).toHaveText('needle');
  await expect(preview).toContainText('zeta-needle-here');
  await page.getByLabel('Search').fill('');
  await expect(row(page, job.id).getByTestId('preview').locator('mark')).toHaveCount(0);
  await expect(row(page, job.id).getByTestId('preview')).toContainText('{"name":"Ada"');
});

test('times show relative or as clock times, as chosen, and the choice is kept', async ({ page, server }) => {
  const job = await server.api.submit('greet', { name: 'Clock' });
  await server.api.finished(job.id);
  await signIn(page, server);
  const created = row(page, job.id).locator('.col-created');
  await expect(created).toHaveText(/just now|ago/);
  await page.getByRole('button', { name: 'Relative times' }).click();
  await expect(page.getByRole('button', { name: 'Clock times' })).toHaveAttribute('aria-pressed', 'true');
  await expect(created).toHaveText(/\d{2}:\d{2}:\d{2}/);
  await page.reload();
  await expect(page.getByRole('button', { name: 'Clock times' })).toBeVisible();
  await expect(row(page, job.id).locator('.col-created')).toHaveText(/\d{2}:\d{2}:\d{2}/);
  await row(page, job.id).click();
  await expect(page.getByTestId('job-detail').locator('.meta-item', { hasText: 'Created' }).locator('dd')).toHaveText(/\d{2}:\d{2}:\d{2}/);
  await page.getByRole('button', { name: 'Clock times' }).click();
  await expect(page.getByTestId('job-detail').locator('.meta-item', { hasText: 'Created' }).locator('dd')).toHaveText(/just now|ago/);
});

test('on a phone the filters fold so the first job shows on the first screen', async ({ page, server }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  const job = await server.api.submit('greet', { name: 'Phone' });
  await server.api.finished(job.id);
  await signIn(page, server);
  await expect(row(page, job.id)).toBeInViewport();
  await expect(page.getByRole('button', { name: 'failed', exact: true })).toBeHidden();
  await page.getByText('Filters', { exact: true }).click();
  await expect(page.getByRole('button', { name: 'failed', exact: true })).toBeVisible();
  const box = await row(page, job.id).getByRole('checkbox').boundingBox();
  expect(box.width).toBeGreaterThanOrEqual(24);
  expect(box.height).toBeGreaterThanOrEqual(24);
});

test('after a bulk action focus lands on the list, not nowhere', async ({ page, server }) => {
  const job = await server.api.submit('hold', null);
  await signIn(page, server);
  await expect(row(page, job.id).getByTestId('status')).toHaveText('running');
  await row(page, job.id).getByRole('checkbox').check();
  await page.getByRole('button', { name: 'Cancel selected' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByText(/Cancelled 1 job/)).toBeVisible();
  await expect(page.getByTestId('summary')).toBeFocused();
});

test('the list sorts on the server, places live changes by the sort, and keeps to a time range', async ({ page, server }) => {
  const ids = async () => page.locator('[data-testid="jobs-table"] tr[data-job-id]').evaluateAll((rows) => rows.map((tr) => tr.dataset.jobId));
  const made = [];
  for (const seconds of ['0.4', '0.1', '0.25']) {
    const job = await server.api.submit('shell', { command: `sleep ${seconds}` });
    made.push(await server.api.finished(job.id));
  }
  const [long, short, middle] = made;
  const hold = await server.api.submit('hold', {});
  await signIn(page, server);
  await expect(row(page, hold.id)).toBeVisible();

  await page.getByLabel('Sort').selectOption({ label: 'Longest run first' });
  await expect.poll(() => new URL(page.url()).searchParams.get('sort')).toBe('duration');
  await expect(page.locator('th.col-duration')).toHaveAttribute('aria-sort', 'descending');
  // A job still running has no duration: last in either direction.
  await expect.poll(ids).toEqual([long.id, middle.id, short.id, hold.id]);
  await page.getByLabel('Sort').selectOption({ label: 'Shortest run first' });
  await expect.poll(ids).toEqual([short.id, middle.id, long.id, hold.id]);
  await expect(page.locator('th.col-duration')).toHaveAttribute('aria-sort', 'ascending');

  // A job that ends now takes its place by its run, not at the top.
  const late = await server.api.submit('shell', { command: 'sleep 0.3' });
  await server.api.finished(late.id);
  await expect.poll(ids).toEqual([short.id, middle.id, late.id, long.id, hold.id]);

  // Finished in the last 15 minutes: the running job leaves; the URL holds the instant.
  await page.getByLabel('Time', { exact: true }).selectOption({ label: 'Finished in the last 15 minutes' });
  await expect.poll(() => new URL(page.url()).searchParams.get('finished_after')).not.toBeNull();
  await expect(row(page, hold.id)).toHaveCount(0);
  await expect.poll(ids).toEqual([short.id, middle.id, late.id, long.id]);
  await expect(page.getByTestId('summary')).toHaveText('4 of 4 jobs');

  // The link shows the same list, its range as a custom one.
  const shared = page.url();
  await page.goto('about:blank');
  await page.goto(shared);
  await expect.poll(ids).toEqual([short.id, middle.id, late.id, long.id]);
  await expect(page.getByLabel('Time', { exact: true })).toHaveValue('custom');
  await expect(page.getByLabel('Field')).toHaveValue('finished');
  await expect(page.getByLabel('From')).not.toHaveValue('');

  await page.getByRole('button', { name: 'Clear filters' }).click();
  await expect(row(page, hold.id)).toBeVisible();
  await expect(page.getByLabel('Sort')).toHaveValue('created:desc');
  await server.api.request('POST', `/v1/jobs/${hold.id}/cancel`);
});

test('a log is split by attempt, tells stderr apart, shows times, and finds text', async ({ page, server }) => {
  const job = await server.api.submit('shell', {
    command: 'echo "try $RUNWAY_ATTEMPT"; sleep 0.05; echo oops >&2; sleep 0.05; echo "done $RUNWAY_ATTEMPT"; test "$RUNWAY_ATTEMPT" = 2',
  }, { max_attempts: 2 });
  await server.api.finished(job.id);
  await signIn(page, server);
  await page.goto(`${server.url}/jobs/${job.id}`);
  const log = page.getByTestId('log');
  const markers = log.locator('.log-attempt');
  await expect(markers).toHaveCount(2);
  // Each attempt's marker says how it ended, the failed one with its error.
  await expect(markers.nth(0)).toContainText(/Attempt 1 · retry scheduled: .+/);
  await expect(markers.nth(1)).toHaveText('Attempt 2 · succeeded');
  await expect(log.locator('.log-stderr')).toHaveText(['oops\n', 'oops\n']);
  await expect(log.locator('.log-stdout').first()).toContainText('try 1');

  // Times are there to show, off by default.
  await expect(log.locator('.log-time').first()).toBeHidden();
  await page.getByRole('button', { name: 'Times in the log' }).click();
  await expect(log.locator('.log-time').first()).toBeVisible();
  await expect(log.locator('.log-time').first()).toHaveText(/^\d\d:\d\d:\d\d\.\d{3}$/);

  await page.getByLabel('Find in log').fill('oops');
  await expect(page.locator('.log-find-count')).toHaveText('1 of 2');
  await page.getByLabel('Find in log').press('Enter');
  await expect(page.locator('.log-find-count')).toHaveText('2 of 2');
  await page.getByLabel('Find in log').fill('nowhere');
  await expect(page.locator('.log-find-count')).toHaveText('No match');
});

test('the jobs table is one tab stop: the arrows move through it and Space selects', async ({ page, server }) => {
  const jobs = [];
  for (const name of ['One', 'Two', 'Three']) jobs.push(await server.api.submit('greet', { name }));
  for (const job of jobs) await server.api.finished(job.id);
  await signIn(page, server);
  for (const job of jobs) await expect(row(page, job.id)).toBeVisible();

  await page.getByRole('checkbox', { name: 'Select all loaded jobs' }).focus();
  await page.keyboard.press('Tab');
  const newest = page.getByRole('link', { name: `Job ${jobs[2].id}`, exact: true });
  await expect(newest).toBeFocused();
  await page.keyboard.press('ArrowDown');
  await expect(page.getByRole('link', { name: `Job ${jobs[1].id}`, exact: true })).toBeFocused();
  await expect(row(page, jobs[1].id)).toHaveClass(/row-cursor/);
  await page.keyboard.press(' ');
  await expect(row(page, jobs[1].id).getByRole('checkbox')).toBeChecked();
  // Tab leaves the table from any row: no stop on the other rows or their checkboxes.
  await page.keyboard.press('Tab');
  const inTable = await page.evaluate(() => Boolean(document.activeElement.closest('[data-testid="jobs-table"] tbody')));
  expect(inTable).toBe(false);
  // Back in, the table's stop is the row the keyboard was on.
  await page.keyboard.press('Shift+Tab');
  await expect(page.getByRole('link', { name: `Job ${jobs[1].id}`, exact: true })).toBeFocused();
});
