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

test('the printed link signs straight in, leaves no token in the address bar, and sign-out ends the session', async ({ page, server }) => {
  await signIn(page, server);
  expect(page.url()).not.toContain('token');
  expect(page.url()).not.toContain(server.token);
  await expect(page.getByTestId('jobs-table')).toBeVisible();
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
});

test('a sign-in link opened while signed in is not used again', async ({ page, server }) => {
  await signIn(page, server);
  const cookie = async () => (await page.context().cookies()).find((c) => c.name === 'runway_session').value;
  const before = await cookie();

  // Opened in a fresh load: the session is kept, the link is not used, the token is gone.
  await page.goto('about:blank');
  await page.goto(server.signInUrl);
  await expect(page.getByText('Already signed in; the link was not used')).toBeVisible();
  await expect(page.getByTestId('connection')).toHaveText('Live');
  await expect(page.getByTestId('jobs-table')).toBeVisible();
  expect(page.url()).not.toContain('token');
  expect(await cookie()).toBe(before);

  // Pasted into the address bar of the open page (a hash change): the same.
  await page.getByRole('button', { name: 'Dismiss' }).click();
  await expect(page.getByText('Already signed in; the link was not used')).toBeHidden();
  await page.evaluate((hash) => { location.hash = hash; }, new URL(server.signInUrl).hash);
  await expect(page.getByText('Already signed in; the link was not used')).toBeVisible();
  expect(page.url()).not.toContain('token');
  expect(await cookie()).toBe(before);
  await expect(page.getByTestId('connection')).toHaveText('Live');
});

test('a damaged sign-in link shows the sign-in form with an error', async ({ page, server }) => {
  await page.goto(`${server.url}/#token=${server.token}%E0%A4%A`);
  await expect(page.getByRole('alert')).toContainText('damaged');
  await expect(page.getByLabel('Token')).toBeVisible();
  expect(page.url()).not.toContain('token');
  await page.getByLabel('Token').fill(server.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('connection')).toHaveText('Live');
});
