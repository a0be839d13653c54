import { test as base, expect, signIn, startServer, CONFIG } from '../fixtures.js';

// A parent that spawns three keyed children, each slower than the last, and joins them; a job
// that leaves audio and text artifacts; one that leaves HTML and SVG that try to run script.
const TREES = `${CONFIG}
[types.fan]
command = ["sh", "-c", '''
if [ "$RUNWAY_PHASE" = join ]; then echo joined; exit 0; fi
echo '::runway {"spawn": [{"type": "slow", "key": "1", "input": 1}, {"type": "slow", "key": "2", "input": 2}, {"type": "slow", "key": "3", "input": 3}]}'
''']
join = true

[types.slow]
command = ["sh", "-c", "n=$(cat); echo '::runway {\\"progress\\": 0.5}'; sleep $(( n ))"]

[types.tone]
command = ["sh", "-c", '''
sox -n -r 8000 -c 1 "$RUNWAY_ARTIFACTS/tone.wav" synth 1.5 sine 440
echo "the notes of the tone" > "$RUNWAY_ARTIFACTS/notes.txt"
''']

[types.hostile]
command = ["sh", "-c", '''
cat > "$RUNWAY_ARTIFACTS/page.html" <<'HTML'
<script>document.title = "pwned"; try { parent.document.title = "pwned" } catch (e) {} alert("pwned")</script>
HTML
cat > "$RUNWAY_ARTIFACTS/evil.svg" <<'SVG'
<svg xmlns="http://www.w3.org/2000/svg"><script>alert("pwned")</script></svg>
SVG
''']
`;

const test = base.extend({
  server: async ({}, use) => {
    const server = await startServer(TREES);
    await use(server);
    await server.stop();
  },
});

const row = (page, id) => page.locator(`[data-testid="jobs-table"] tr[data-job-id="${id}"]`);
const child = (page, id) => page.locator(`[data-testid="tree"] tr[data-job-id="${id}"]`);

test('a tree shows as its root in the list, and its children update live on its page', async ({ page, server }) => {
  await signIn(page, server);
  const parent = await server.api.submit('fan', null);
  // The list shows the root alone, with its children's count.
  await expect(row(page, parent.id)).toBeVisible();
  const link = row(page, parent.id).locator('.col-children a');
  await expect(link).toHaveText(/^\d\/3$/);

  await link.click();
  await expect(page.getByRole('heading', { level: 1, name: `Job ${parent.id}` })).toBeVisible();
  const tree = page.getByTestId('tree');
  await expect(tree.locator('tbody tr')).toHaveCount(3);
  const children = await tree.locator('tbody tr').evaluateAll((rows) => rows.map((tr) => tr.dataset.jobId));
  // The children run one after the other faster than the last; each row changes in place.
  await expect(child(page, children[0]).getByTestId('status')).toHaveText('succeeded', { timeout: 10_000 });
  await expect(child(page, children[2]).getByTestId('status')).toHaveText('running');
  await expect(page.getByTestId('tree-summary')).toContainText('of 3 finished');
  await expect(child(page, children[2]).getByTestId('status')).toHaveText('succeeded', { timeout: 10_000 });
  await expect(page.getByTestId('tree-summary')).toHaveText('3 of 3 finished · 3 succeeded');
  await expect(page.getByTestId('job-detail').getByTestId('status').first()).toHaveText('succeeded');
  await expect(child(page, children[1]).locator('td').nth(1)).toHaveText('2');

  // A child's page leads back to its parent.
  await child(page, children[1]).getByRole('link', { name: children[1] }).click();
  await expect(page.getByTestId('breadcrumb').getByRole('link', { name: `Job ${parent.id}` })).toBeVisible();
  await page.getByTestId('breadcrumb').getByRole('link', { name: `Job ${parent.id}` }).click();
  await expect(page.getByRole('heading', { level: 1, name: `Job ${parent.id}` })).toBeVisible();

  // Every job, children included, on demand.
  await page.getByRole('navigation').getByRole('link', { name: 'Jobs' }).click();
  await expect(row(page, children[0])).toHaveCount(0);
  await page.getByLabel('Include child jobs').check();
  await expect(row(page, children[0])).toBeVisible();
  expect(new URL(page.url()).searchParams.get('all')).toBe('1');
});

test('an audio artifact plays in the page, and a text one is shown as text', async ({ page, server }) => {
  const job = await server.api.submit('tone', null);
  await server.api.finished(job.id);
  await signIn(page, server);
  await page.goto(`${server.url}/jobs/${job.id}`);
  const audio = page.getByTestId('artifact-audio');
  await expect(audio).toBeVisible();
  // The player read the file's header from the server: its length is the tone's.
  await expect.poll(() => audio.evaluate((element) => element.duration), { timeout: 10_000 }).toBeCloseTo(1.5, 1);
  await expect(page.getByTestId('artifact-text')).toHaveText('the notes of the tone\n');
  const download = page.getByTestId('artifacts').getByRole('link', { name: 'tone.wav' });
  await expect(download).toHaveAttribute('download', 'tone.wav');
});

test('HTML and SVG artifacts never run script in the dashboard', async ({ page, server }) => {
  page.on('dialog', (dialog) => {
    throw new Error(`an artifact opened a dialog: ${dialog.message()}`);
  });
  const job = await server.api.submit('hostile', null);
  await server.api.finished(job.id);
  await signIn(page, server);
  await page.goto(`${server.url}/jobs/${job.id}`);
  const list = page.getByTestId('artifacts');
  await expect(list.getByRole('link', { name: 'page.html' })).toBeVisible();
  await expect(list.getByRole('link', { name: 'evil.svg' })).toBeVisible();
  // Nothing of them is shown in the page: no image, frame or player, only downloads.
  await expect(list.locator('img, audio, video, pre')).toHaveCount(0);
  await expect(list.getByText('(download only)')).toHaveCount(2);
  await expect(page).toHaveTitle(new RegExp(`^Job ${job.id}`));

  // Opened directly, each is a download, never a page of this origin.
  for (const name of ['page.html', 'evil.svg']) {
    const url = `${server.url}/v1/jobs/${job.id}/artifacts/${name}`;
    const answer = await page.request.get(url);
    expect(answer.headers()['content-disposition']).toMatch(/^attachment/);
    expect(answer.headers()['content-security-policy']).toMatch(/^sandbox/);
    expect(answer.headers()['x-content-type-options']).toBe('nosniff');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.evaluate((href) => { window.location.href = href; }, url),
    ]);
    expect(download.suggestedFilename()).toBe(name);
  }
  await expect(page).toHaveTitle(new RegExp(`^Job ${job.id}`));
});
