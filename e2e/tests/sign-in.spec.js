import { test, expect, signIn } from '../fixtures.js';

test('without a session only the sign-in form shows; a wrong token is refused', async ({ page, server }) => {
  await page.goto(`${server.url}/`);
  await expect(page.getByLabel('Token')).toBeVisible();
  await expect(page.getByTestId('jobs-table')).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Queues' })).toHaveCount(0);

  await page.getByLabel('Token').fill('rwy_not-a-real-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('not valid');
  await expect(page.getByTestId('jobs-table')).toHaveCount(0);

  // The right token, typed in: signed in, and the session survives a reload (cookie).
  await page.getByLabel('Token').fill(server.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('jobs-table')).toBeVisible();
  await page.reload();
  await expect(page.getByTestId('jobs-table')).toBeVisible();
  await expect(page.getByTestId('connection')).toHaveText('Live');
});

test('the printed link asks whose session it starts, works once, and sign-out ends the session', async ({ page, server }) => {
  await page.goto(server.signInUrl);
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('Sign in as admin?');
  await expect(dialog).toContainText('admin (admin)');
  expect(page.url()).not.toContain('code');
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByTestId('connection')).toHaveText('Live');
  await expect(page.getByTestId('user')).toHaveText('admin · admin');
  const cookies = await page.context().cookies();
  const session = cookies.find((cookie) => cookie.name === 'runway_session');
  expect(session.httpOnly).toBe(true);
  expect(session.sameSite).toBe('Strict');
  expect(cookies.map((cookie) => cookie.value).join(' ')).not.toContain(server.token);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByLabel('Token')).toBeVisible();
  await page.reload();
  await expect(page.getByLabel('Token')).toBeVisible();
  await expect(page.getByTestId('jobs-table')).toHaveCount(0);

  // The link's code was spent by its first use.
  await page.goto(server.signInUrl);
  await expect(page.getByRole('alert')).toContainText('used already or has expired');
  await expect(page.getByTestId('jobs-table')).toHaveCount(0);
});

test('a sign-in link for the user already signed in is not used', async ({ page, server }) => {
  await signIn(page, server);
  const cookie = async () => (await page.context().cookies()).find((c) => c.name === 'runway_session').value;
  const before = await cookie();
  const link = await server.api.signInLink();

  // Opened in a fresh load: the session is kept, the link is not used, the code is gone.
  await page.goto('about:blank');
  await page.goto(link);
  await expect(page.getByText('Already signed in as admin; the link was not used')).toBeVisible();
  await expect(page.getByTestId('connection')).toHaveText('Live');
  await expect(page.getByTestId('jobs-table')).toBeVisible();
  expect(page.url()).not.toContain('code');
  expect(await cookie()).toBe(before);

  // Pasted into the address bar of the open page (a hash change): the same.
  await page.getByRole('button', { name: 'Dismiss' }).click();
  await expect(page.getByText('Already signed in as admin; the link was not used')).toBeHidden();
  await page.evaluate((hash) => { location.hash = hash; }, new URL(link).hash);
  await expect(page.getByText('Already signed in as admin; the link was not used')).toBeVisible();
  expect(page.url()).not.toContain('code');
  expect(await cookie()).toBe(before);
  await expect(page.getByTestId('connection')).toHaveText('Live');
});

test('a link for another user asks before switching', async ({ page, server }) => {
  const alice = await server.api.addUser('alice', 'member');
  await signIn(page, server);
  const link = await alice.signInLink();

  await page.goto(link);
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('Switch to alice?');
  await expect(dialog).toContainText('You are signed in as admin (admin)');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByText('Still signed in as admin; the link was not used')).toBeVisible();
  await expect(page.getByTestId('user')).toHaveText('admin · admin');

  // The code was not spent: the same link switches when confirmed.
  await page.goto('about:blank');
  await page.goto(link);
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByTestId('user')).toHaveText('alice · member');
  await expect(page.getByTestId('connection')).toHaveText('Live');
  await expect(page.getByRole('link', { name: 'Triggers' })).toBeHidden();
});

test('a damaged sign-in link shows the sign-in form with an error', async ({ page, server }) => {
  await page.goto(`${server.url}/#code=rwc_0123%E0%A4%A`);
  await expect(page.getByRole('alert')).toContainText('damaged');
  await expect(page.getByLabel('Token')).toBeVisible();
  expect(page.url()).not.toContain('code');
  await page.getByLabel('Token').fill(server.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('connection')).toHaveText('Live');
});
