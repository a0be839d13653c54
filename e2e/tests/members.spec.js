import { test, expect, signIn } from '../fixtures.js';

const row = (page, id) => page.locator(`[data-testid="jobs-table"] tr[data-job-id="${id}"]`);

async function signInWithToken(page, server, token) {
  await page.goto(`${server.url}/`);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('connection')).toHaveText('Live');
}

test('a member sees only its own jobs, no triggers, and who it is signed in as', async ({ page, server }) => {
  const alice = await server.api.addUser('alice', 'member');
  const hers = await alice.submit('greet', { name: 'Alice' });
  const admins = await server.api.submit('greet', { name: 'Root' });
  await server.api.finished(hers.id);
  await server.api.finished(admins.id);

  await signInWithToken(page, server, alice.token);
  await expect(page.getByTestId('user')).toHaveText('alice · member');
  await expect(row(page, hers.id)).toBeVisible();
  await expect(row(page, admins.id)).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Triggers' })).toBeHidden();

  // A job she submits now appears live; one the admin submits does not.
  const other = await server.api.submit('greet', { name: 'Other' });
  await server.api.finished(other.id);
  const later = await alice.submit('greet', { name: 'Later' });
  await expect(row(page, later.id)).toBeVisible();
  await expect(row(page, other.id)).toHaveCount(0);

  // Queues show everyone's counts, but only admins pause them.
  await page.getByRole('link', { name: 'Queues' }).click();
  await expect(page.getByRole('heading', { name: 'default' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Pause' })).toHaveCount(0);
  await page.getByRole('link', { name: 'Jobs' }).click();

  // Her own job's page does not name its owner: every job she sees is hers.
  await row(page, hers.id).click();
  await expect(page.getByTestId('job-detail').getByTestId('status')).toHaveText('succeeded');
  await expect(page.getByText('Owner', { exact: true })).toBeHidden();
});

test('an admin sees every job and whose it is', async ({ page, server }) => {
  const alice = await server.api.addUser('alice', 'member');
  const hers = await alice.submit('greet', { name: 'Alice' });
  await server.api.finished(hers.id);
  await signIn(page, server);
  await expect(page.getByTestId('user')).toHaveText('admin · admin');
  await expect(page.getByRole('link', { name: 'Triggers' })).toBeVisible();
  await row(page, hers.id).click();
  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('status')).toHaveText('succeeded');
  await expect(detail.locator('.meta-item', { hasText: 'Owner' }).locator('dd')).toHaveText('alice');
});
