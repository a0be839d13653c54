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

test('queues show depth and pause and resume from the page', async ({ page, server }) => {
  await server.api.request('POST', '/v1/queues/renders/pause');
  const waiting = await server.api.submit('steps', { scene: 'a' });
  const done = await server.api.submit('greet', { name: 'counted' });
  await server.api.finished(done.id);
  await signIn(page, server);
  await page.getByRole('link', { name: 'Queues' }).click();
  const renders = page.getByTestId('queue-renders');
  await expect(renders).toContainText('paused');
  await expect(renders.locator('svg')).toHaveCount(1);
  await expect(page.getByTestId('queue-default').locator('svg')).toHaveCount(1);
  await renders.getByRole('button', { name: 'Resume' }).click();
  await expect(renders.getByRole('button', { name: 'Pause' })).toBeVisible();
  expect((await server.api.finished(waiting.id)).status).toBe('succeeded');
  await renders.getByRole('button', { name: 'Pause' }).click();
  await expect(renders.getByRole('button', { name: 'Resume' })).toBeVisible();
  const queues = await server.api.request('GET', '/v1/queues');
  expect(queues.queues.find((queue) => queue.name === 'renders').paused).toBe(true);
});
