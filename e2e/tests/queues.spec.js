import { test, expect, signIn } from '../fixtures.js';

test('a queue’s history charts what finished, with axes, a readout per bucket, and a table', async ({ page, server }) => {
  const ok = await server.api.submit('greet', { name: 'Ada' });
  const bad = await server.api.submit('broken', null);
  await server.api.finished(ok.id);
  await server.api.finished(bad.id);
  await signIn(page, server);
  await page.getByRole('link', { name: 'Queues' }).click();
  const history = page.getByTestId('queue-history');
  await history.getByLabel('Queue').selectOption('default');
  // The newest bucket is picked first: both jobs finished in it.
  await expect(page.getByTestId('history-readout')).toContainText('1 succeeded, 1 failed, 0 cancelled');
  await expect(page.getByTestId('history-readout')).toContainText(/run p50 \d/);
  await expect(history.getByTestId('history-counts').locator('rect.bar-failed')).toHaveCount(1);
  await expect(history.getByTestId('history-counts').locator('text.chart-label')).toHaveCount(6);
  // The arrows move through the buckets; an empty one says so.
  await history.locator('figure').first().focus();
  await page.keyboard.press('ArrowLeft');
  await expect(page.getByTestId('history-readout')).toContainText('0 succeeded, 0 failed, 0 cancelled; wait p50 —');
  await page.getByRole('button', { name: 'History of the last 7 d' }).click();
  await expect(page.getByRole('button', { name: 'History of the last 7 d' })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByTestId('history-readout')).toContainText('1 succeeded, 1 failed');
  await history.getByText('Show as a table').click();
  await expect(history.locator('table tbody tr')).toHaveCount(1);
});
