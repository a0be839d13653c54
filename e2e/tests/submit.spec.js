import { test, expect, signIn, startServer, CONFIG } from '../fixtures.js';

async function openSubmit(page, type) {
  await page.getByRole('link', { name: 'Submit' }).click();
  await page.getByLabel('Type').selectOption(type);
}

const fieldError = (page, name) =>
  page.locator('.field', { has: page.getByLabel(name, { exact: true }) }).getByRole('alert');

test('a job submitted through the generated form goes from queued to succeeded, its log arriving live', async ({ page, server }) => {
  await server.api.request('POST', '/v1/queues/renders/pause');
  await signIn(page, server);
  await openSubmit(page, 'steps');
  await page.getByLabel('scene', { exact: true }).fill('intro');
  await page.getByRole('button', { name: 'Submit job' }).click();

  const detail = page.getByTestId('job-detail');
  const status = detail.getByTestId('status');
  await expect(status).toHaveText('queued');
  const id = page.url().split('/').pop();
  expect((await server.api.job(id)).input).toEqual({ scene: 'intro' });

  await server.api.request('POST', '/v1/queues/renders/resume');
  await expect(detail.getByTestId('log')).toContainText('rendered frame 2');
  await expect(status).toHaveText('running');
  await expect(detail).toContainText(/frame \d of 8/);
  await expect(status).toHaveText('succeeded', { timeout: 20_000 });
  await expect(detail.getByTestId('log')).toContainText('rendered frame 8');
  // Newest first, and the four progress events are one line.
  const kinds = await detail.getByTestId('timeline').locator('li').allTextContents();
  expect(kinds.join(' ')).toMatch(/succeeded[\s\S]*progress[\s\S]*4 updates[\s\S]*started[\s\S]*submitted/);
  await expect(detail.getByTestId('timeline').locator('li', { hasText: 'progress' })).toHaveCount(1);
});

test('the generated form covers every kind of field and checks it before sending', async ({ page, server }) => {
  await signIn(page, server);
  await openSubmit(page, 'greet');

  // Required, then out of range: errors at the field, and nothing is sent.
  await page.getByRole('button', { name: 'Submit job' }).click();
  await expect(fieldError(page, 'name')).toBeVisible();
  await page.getByLabel('name', { exact: true }).fill('Ada');
  await page.getByLabel('times', { exact: true }).fill('9');
  await page.getByRole('button', { name: 'Submit job' }).click();
  await expect(fieldError(page, 'times')).toContainText('5');
  expect((await server.api.request('GET', '/v1/jobs/count')).count).toBe(0);

  await page.getByLabel('times', { exact: true }).fill('3');
  await page.getByLabel('loud', { exact: true }).check();
  await page.getByLabel('color', { exact: true }).selectOption('green');
  await page.getByRole('button', { name: 'Add tags item' }).click();
  await page.getByLabel('tags 1', { exact: true }).fill('first');
  await page.getByRole('button', { name: 'Add tags item' }).click();
  await page.getByLabel('tags 2', { exact: true }).fill('second');
  await page.getByLabel('width', { exact: true }).fill('1.5');
  await page.getByRole('button', { name: 'Submit job' }).click();

  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('status')).toHaveText('succeeded');
  const id = page.url().split('/').pop();
  expect((await server.api.job(id)).input).toEqual({
    name: 'Ada',
    times: 3,
    loud: true,
    color: 'green',
    tags: ['first', 'second'],
    size: { width: 1.5 },
  });
});

test('raw JSON is the fallback, and the server’s schema errors are shown', async ({ page, server }) => {
  await signIn(page, server);
  await openSubmit(page, 'greet');
  await page.getByRole('button', { name: 'Raw JSON' }).click();
  const raw = page.getByLabel('Input (JSON)');
  await raw.fill('{"name": "Linus", "extra": true}');
  await page.getByRole('button', { name: 'Submit job' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'extra' })).toBeVisible();
  expect((await server.api.request('GET', '/v1/jobs/count')).count).toBe(0);

  await raw.fill('{"name": "Linus"');
  await page.getByRole('button', { name: 'Submit job' }).click();
  await expect(page.getByRole('alert').filter({ hasText: /JSON/ })).toBeVisible();
  // The error goes as soon as the text parses, before any submit.
  await raw.fill('{"name": "Linus"}');
  await expect(page.getByRole('alert').filter({ hasText: /JSON/ })).toHaveCount(0);

  await raw.fill('{"name": "Linus"}');
  await page.getByRole('button', { name: 'Submit job' }).click();
  await expect(page.getByTestId('job-detail').getByTestId('status')).toHaveText('succeeded');
});

test('run again with edited input starts from the old job’s input', async ({ page, server }) => {
  const job = await server.api.submit('greet', { name: 'Grace', times: 2 });
  await server.api.finished(job.id);
  await signIn(page, server);
  await page.goto(`${server.url}/jobs/${job.id}`);
  await page.getByRole('button', { name: 'Run again with edited input' }).click();
  await expect(page.getByLabel('Type')).toHaveValue('greet');
  await expect(page.getByLabel('name', { exact: true })).toHaveValue('Grace');
  await expect(page.getByLabel('times', { exact: true })).toHaveValue('2');
  await page.getByLabel('name', { exact: true }).fill('Grace Hopper');
  await page.getByRole('button', { name: 'Submit job' }).click();
  const detail = page.getByTestId('job-detail');
  await expect(detail.getByTestId('status')).toHaveText('succeeded');
  await expect(detail.getByTestId('input')).toContainText('Grace Hopper');
  const id = page.url().split('/').pop();
  expect(id).not.toBe(job.id);
  expect((await server.api.job(id)).input).toEqual({ name: 'Grace Hopper', times: 2 });
});

// The page checks what it can before sending; what only the server checks comes back as 422
// `details` and must land on the field as well. `greet` leaves nothing of that kind (the form
// cannot even make extra properties), so this test runs its own server with a type whose
// schema says `uniqueItems`, which the form does not check.
const TAGGED = `${CONFIG}
[types.tagged]
command = ["sh", "-c", "cat"]

[types.tagged.schema]
type = "object"
properties = { label = { type = "string" }, tags = { type = "array", items = { type = "string" }, uniqueItems = true } }
`;

test('in form mode, the server’s schema errors land on their field', async ({ page }) => {
  const server = await startServer(TAGGED);
  try {
    await signIn(page, server);
    await openSubmit(page, 'tagged');
    await page.getByLabel('label', { exact: true }).fill('twice');
    await page.getByRole('button', { name: 'Add tags item' }).click();
    await page.getByLabel('tags 1', { exact: true }).fill('same');
    await page.getByRole('button', { name: 'Add tags item' }).click();
    await page.getByLabel('tags 2', { exact: true }).fill('same');
    await page.getByRole('button', { name: 'Submit job' }).click();

    const tags = page.locator('fieldset', { has: page.getByRole('button', { name: 'Add tags item' }) });
    await expect(tags.getByRole('alert')).toContainText('non-unique');
    await expect(page.getByRole('button', { name: 'Raw JSON' })).toHaveAttribute('aria-pressed', 'false');
    await expect(page.locator('.form-errors')).toBeHidden();
    expect((await server.api.request('GET', '/v1/jobs/count')).count).toBe(0);

    // Fixed in the form, it goes through.
    await page.getByLabel('tags 2', { exact: true }).fill('other');
    await page.getByRole('button', { name: 'Submit job' }).click();
    await expect(page.getByTestId('job-detail').getByTestId('status')).toHaveText('succeeded');
    const id = page.url().split('/').pop();
    expect((await server.api.job(id)).input).toEqual({ label: 'twice', tags: ['same', 'other'] });
  } finally {
    await server.stop();
  }
});

const TITLED = `${CONFIG}
[types.titled]
command = ["sh", "-c", "cat"]

[types.titled.schema]
type = "object"
required = ["recipient"]

[types.titled.schema.properties.recipient]
type = "string"
title = "Recipient's name"
description = "Who the card is for."

[types.titled.schema.properties.lines]
type = "array"
title = "Lines of the card"
items = { type = "string" }
maxItems = 2
`;

test('fields are labelled by their schema titles, items by their list and place', async ({ page }) => {
  const server = await startServer(TITLED);
  try {
    await signIn(page, server);
    await openSubmit(page, 'titled');
    await expect(page.getByLabel("Recipient's name", { exact: true })).toBeVisible();
    await expect(page.getByText('Who the card is for.')).toBeVisible();
    await expect(page.getByText('recipient', { exact: true })).toHaveCount(0);
    await page.getByRole('button', { name: 'Add Lines of the card item' }).click();
    await page.getByRole('button', { name: 'Add Lines of the card item' }).click();
    await page.getByLabel("Recipient's name", { exact: true }).fill('Ada');
    await page.getByLabel('Lines of the card 1', { exact: true }).fill('Happy');
    await page.getByLabel('Lines of the card 2', { exact: true }).fill('birthday');
    await expect(page.getByRole('button', { name: 'Remove Lines of the card 2' })).toBeVisible();
    // Two is the most the schema takes: no third.
    await expect(page.getByRole('button', { name: 'Add Lines of the card item' })).toBeDisabled();
    await page.getByRole('button', { name: 'Submit job' }).click();
    await expect(page.getByTestId('job-detail').getByTestId('status')).toHaveText('succeeded');
    await expect(page.getByTestId('job-detail').getByTestId('input')).toContainText('birthday');
  } finally {
    await server.stop();
  }
});
