import { test, expect, signIn } from '../fixtures.js';

const row = (page, id) => page.locator(`[data-testid="jobs-table"] tr[data-job-id="${id}"]`);
const heading = (page, name) => page.getByRole('heading', { level: 1, name, exact: true });

test('after each navigation, focus is on the new page’s heading', async ({ page, server }) => {
  const job = await server.api.submit('greet', { name: 'Focus' });
  await server.api.finished(job.id);
  await signIn(page, server);

  await page.getByRole('link', { name: 'Queues' }).click();
  await expect(heading(page, 'Queues')).toBeFocused();
  await page.getByRole('link', { name: 'Submit' }).click();
  await expect(heading(page, 'Submit a job')).toBeFocused();
  await page.getByRole('navigation').getByRole('link', { name: 'Jobs' }).click();
  await expect(heading(page, 'Jobs')).toBeFocused();
  // The next Tab goes on from the top of the page, not from where the last page left off.
  await page.keyboard.press('Tab');
  await expect(page.getByRole('button', { name: 'queued', exact: true })).toBeFocused();

  // By keyboard into a job, and back with the browser's Back.
  await row(page, job.id).getByRole('link', { name: job.id }).focus();
  await page.keyboard.press('Enter');
  await expect(heading(page, `Job ${job.id}`)).toBeFocused();
  await expect(page.getByTestId('job-detail').getByTestId('status')).toHaveText('succeeded');
  await page.goBack();
  await expect(heading(page, 'Jobs')).toBeFocused();

  // A filter change keeps the page, and focus where the user is.
  await page.getByRole('button', { name: 'failed', exact: true }).click();
  await expect(page.getByRole('button', { name: 'failed', exact: true })).toBeFocused();
});

test('every page works under the Trusted Types policy', async ({ page, server }) => {
  const job = await server.api.submit('greet', { name: '<b>Ada</b>', tags: ['x'] });
  await server.api.finished(job.id);
  // The page asks for Trusted Types with no policy at all: any HTML or script sink the page
  // touched would throw and log an error, which fails the test (fixtures.js).
  const response = await page.goto(`${server.url}/`);
  expect(response.headers()['content-security-policy']).toContain("require-trusted-types-for 'script'; trusted-types 'none'");
  await expect(page.getByLabel('Token')).toBeVisible();
  await signIn(page, server);

  await row(page, job.id).getByRole('checkbox').check();
  await page.getByRole('button', { name: 'Cancel selected' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel', exact: true }).click();
  await row(page, job.id).click();
  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('input')).toContainText('<b>Ada</b>');
  await expect(detail.getByTestId('log')).toContainText('greeting');
  await page.getByRole('link', { name: 'Submit' }).click();
  await page.getByLabel('Type').selectOption('greet');
  await page.getByRole('button', { name: 'Raw JSON' }).click();
  await page.getByRole('link', { name: 'Queues' }).click();
  await expect(page.getByTestId('queue-default').locator('svg')).toHaveCount(1);
  await page.goto(`${server.url}/nowhere`);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
});
