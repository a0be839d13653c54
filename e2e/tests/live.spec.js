import { test, expect, signIn, startProxy } from '../fixtures.js';

const row = (page, id) => page.locator(`[data-testid="jobs-table"] tr[data-job-id="${id}"]`);

test('after a dropped connection the page reconnects and shows what changed meanwhile', async ({ page, server }) => {
  const proxy = await startProxy(server.url);
  try {
    const before = await server.api.submit('hold', null);
    await signIn(page, server, proxy.url);
    await expect(row(page, before.id).getByTestId('status')).toHaveText('running');

    proxy.drop();
    await expect(page.getByTestId('connection')).toHaveText('Reconnecting…');

    // While the page is cut off: a job finishes, another is submitted and runs to the end.
    await server.api.request('POST', `/v1/jobs/${before.id}/cancel`);
    await server.api.finished(before.id);
    const during = await server.api.submit('greet', { name: 'while offline' });
    await server.api.finished(during.id);
    // Both changes are done on the server, and the page has seen neither: what it shows after
    // the reconnect can only come from the catch-up.
    await expect(row(page, before.id).getByTestId('status')).toHaveText('running');
    await expect(row(page, during.id)).toHaveCount(0);

    proxy.restore();
    await expect(page.getByTestId('connection')).toHaveText('Live', { timeout: 30_000 });
    await expect(row(page, before.id).getByTestId('status')).toHaveText('cancelled');
    await expect(row(page, during.id).getByTestId('status')).toHaveText('succeeded');

    // And it is live again.
    const after = await server.api.submit('greet', { name: 'back online' });
    await expect(row(page, after.id).getByTestId('status')).toHaveText('succeeded');
  } finally {
    await proxy.close();
  }
});

/** Records the client's session messages (parsed) as the page sends them. */
function recordSent(page) {
  const sent = [];
  page.on('websocket', (ws) => {
    if (!ws.url().endsWith('/v1/session')) return;
    ws.on('framesent', (frame) => {
      try {
        sent.push(JSON.parse(frame.payload));
      } catch {
        /* not JSON */
      }
    });
  });
  return sent;
}

const jobsSubscribes = (sent) => sent.filter((m) => m.tag === 'subscribe' && m.key === 'jobs');

test('a row that leaves a status filter while the page is away shows its new status after the reconnect', async ({ page, server }) => {
  const proxy = await startProxy(server.url);
  const sent = recordSent(page);
  try {
    const job = await server.api.submit('hold', null);
    const other = await server.api.submit('hold', null);
    await signIn(page, server, proxy.url);
    await page.getByRole('button', { name: 'running', exact: true }).click();
    await expect(row(page, job.id).getByTestId('status')).toHaveText('running');
    await expect(row(page, other.id).getByTestId('status')).toHaveText('running');

    proxy.drop();
    await expect(page.getByTestId('connection')).toHaveText('Reconnecting…');
    await server.api.request('POST', `/v1/jobs/${job.id}/cancel`);
    await server.api.finished(job.id);
    await expect(row(page, job.id).getByTestId('status')).toHaveText('running');

    proxy.restore();
    await expect(page.getByTestId('connection')).toHaveText('Live', { timeout: 30_000 });
    // A fresh list of running jobs would drop the row; the resumed one updates it (dimmed: it
    // no longer matches the filter, as with a live change).
    await expect(row(page, job.id).getByTestId('status')).toHaveText('cancelled');
    await expect(row(page, job.id)).toHaveClass(/row-stale/);
    await expect(row(page, other.id).getByTestId('status')).toHaveText('running');

    // hello carries no seq; the list is resumed from the seq it holds; the job page never is.
    expect(sent.filter((m) => m.tag === 'hello').every((m) => !('last_seq' in m) && !('since' in m))).toBe(true);
    const subscribes = jobsSubscribes(sent);
    const resumed = subscribes[subscribes.length - 1];
    expect(resumed.jobs.status).toEqual(['running']);
    expect(typeof resumed.since).toBe('number');
    expect(subscribes.filter((m) => m.jobs.status && m.since !== undefined)).toHaveLength(1);
  } finally {
    await proxy.close();
  }
});

test('after a reconnect, a new filter shows its own rows', async ({ page, server }) => {
  const proxy = await startProxy(server.url);
  const sent = recordSent(page);
  try {
    const good = await server.api.submit('greet', { name: 'fine' });
    const bad = await server.api.submit('broken', null);
    await server.api.finished(good.id);
    await server.api.finished(bad.id);
    await signIn(page, server, proxy.url);
    await expect(row(page, good.id).getByTestId('status')).toHaveText('succeeded');
    await expect(row(page, bad.id).getByTestId('status')).toHaveText('failed');

    proxy.drop();
    await expect(page.getByTestId('connection')).toHaveText('Reconnecting…');
    proxy.restore();
    await expect(page.getByTestId('connection')).toHaveText('Live', { timeout: 30_000 });
    await expect.poll(() => jobsSubscribes(sent).filter((m) => m.since !== undefined).length).toBe(1);

    await page.getByRole('button', { name: 'failed', exact: true }).click();
    await expect(row(page, bad.id).getByTestId('status')).toHaveText('failed');
    await expect(row(page, good.id)).toHaveCount(0);
    await expect(page.getByText('Loading jobs…')).toHaveCount(0);
    // A new filter is a new list: subscribed without `since`.
    const last = jobsSubscribes(sent).at(-1);
    expect(last.jobs.status).toEqual(['failed']);
    expect(last.since).toBeUndefined();

    // And it is live: a new failure shows up in it.
    const again = await server.api.submit('broken', null);
    await expect(row(page, again.id).getByTestId('status')).toHaveText('failed');
  } finally {
    await proxy.close();
  }
});

test('pausing live updates holds changes until resumed', async ({ page, server }) => {
  await signIn(page, server);
  await page.getByRole('button', { name: 'Pause live' }).click();
  const held = await server.api.submit('greet', { name: 'held back' });
  await server.api.finished(held.id);
  await expect(page.getByText(/updates? waiting/)).toBeVisible();
  await expect(row(page, held.id)).toHaveCount(0);
  await page.getByRole('button', { name: 'Resume live' }).click();
  await expect(row(page, held.id).getByTestId('status')).toHaveText('succeeded');
});

test('a paused list holds one update per job, and applies it whole', async ({ page, server }) => {
  await signIn(page, server);
  await page.getByRole('button', { name: 'Pause live' }).click();
  await expect(page.getByText('Live updates paused')).toBeVisible();

  // Submitted from the page, so the job page follows it over the same session as the list:
  // once it shows the job succeeded, the list has been sent every change before that.
  await page.getByRole('link', { name: 'Submit' }).click();
  await page.getByLabel('Type').selectOption('greet');
  await page.getByLabel('name', { exact: true }).fill('held back');
  await page.getByRole('button', { name: 'Submit job' }).click();
  await expect(page.getByTestId('job-detail').getByTestId('status')).toHaveText('succeeded');
  const id = page.url().split('/').pop();

  await page.getByRole('link', { name: '← Back to the list' }).click();
  await expect(page.getByRole('button', { name: 'Resume live' })).toBeVisible();
  // submitted, started, succeeded: three changes, one update.
  await expect(page.getByText('1 update waiting')).toBeVisible();
  await expect(row(page, id)).toHaveCount(0);

  await page.getByRole('button', { name: 'Resume live' }).click();
  await expect(row(page, id).getByTestId('status')).toHaveText('succeeded');
  // What the earlier changes said (when it started) is kept: the row has a duration.
  await expect(row(page, id).locator('td.col-duration')).toHaveText(/\d/);
  await expect(page.getByText(/updates? waiting/)).toHaveCount(0);
});

test('queues show depth and pause and resume from the page', async ({ page, server }) => {
  await server.api.request('POST', '/v1/queues/renders/pause');
  const waiting = await server.api.submit('steps', { scene: 'a' });
  const done = await server.api.submit('greet', { name: 'counted' });
  await server.api.finished(done.id);
  await signIn(page, server);
  await page.getByRole('link', { name: 'Queues' }).click();
  const renders = page.getByTestId('queue-renders');
  const defaults = page.getByTestId('queue-default');
  await expect(renders).toContainText('paused');
  // The waiting job has an age; the default queue has nothing queued and counts its finished job.
  await expect(renders.getByTestId('oldest-queued')).toHaveText(/^\d/);
  await expect(renders.getByTestId('throughput')).toHaveText('0 finished in 10 min');
  await expect(defaults.getByTestId('oldest-queued')).toHaveText('—');
  await expect(defaults.getByTestId('throughput')).toHaveText('1 finished in 10 min');
  await expect(renders.locator('svg')).toHaveCount(1);
  await expect(page.getByTestId('queue-default').locator('svg')).toHaveCount(1);
  await renders.getByRole('button', { name: 'Resume' }).click();
  await expect(renders.getByRole('button', { name: 'Pause' })).toBeVisible();
  expect((await server.api.finished(waiting.id)).status).toBe('succeeded');
  await expect(renders.getByTestId('throughput')).toHaveText('1 finished in 10 min');
  await expect(renders.getByTestId('oldest-queued')).toHaveText('—');
  await renders.getByRole('button', { name: 'Pause' }).click();
  await expect(renders.getByRole('button', { name: 'Resume' })).toBeVisible();
  const queues = await server.api.request('GET', '/v1/queues');
  expect(queues.queues.find((queue) => queue.name === 'renders').paused).toBe(true);
});
