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
