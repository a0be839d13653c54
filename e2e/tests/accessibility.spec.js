import AxeBuilder from '@axe-core/playwright';
import { test, expect, signIn } from '../fixtures.js';

// Every page, in the light and the dark scheme, with no violation axe-core finds (WCAG 2.x A
// and AA rules, colour contrast included).
async function violations(page) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return results.violations.map((violation) => ({
    rule: violation.id,
    count: violation.nodes.length,
    first: violation.nodes[0] && violation.nodes[0].failureSummary,
    target: violation.nodes[0] && violation.nodes[0].target.join(' '),
  }));
}

for (const scheme of ['light', 'dark']) {
  test(`every page has no accessibility violation in the ${scheme} scheme`, async ({ page, server }) => {
    await page.emulateMedia({ colorScheme: scheme });
    const done = await server.api.submit('greet', { name: 'Ada' });
    const failed = await server.api.submit('broken', null);
    const running = await server.api.submit('hold', null);
    await server.api.submit('greet', { name: 'Later' }, { run_at: '2099-01-01T00:00:00Z' });
    await server.api.finished(done.id);
    await server.api.finished(failed.id);

    await page.goto(`${server.url}/`);
    await expect(page.getByLabel('Token')).toBeVisible();
    expect.soft(await violations(page), 'sign-in').toEqual([]);

    await signIn(page, server);
    await expect(page.locator(`tr[data-job-id="${running.id}"] [data-testid="status"]`)).toHaveText('running');
    await page.getByRole('button', { name: 'failed', exact: true }).click();
    await expect(page.locator(`tr[data-job-id="${failed.id}"]`)).toBeVisible();
    expect.soft(await violations(page), 'jobs with a status filter pressed').toEqual([]);
    await page.getByRole('button', { name: 'failed', exact: true }).click();
    expect.soft(await violations(page), 'jobs').toEqual([]);

    for (const job of [done, failed, running]) {
      await page.goto(`${server.url}/jobs/${job.id}`);
      await expect(page.getByTestId('job-detail').getByTestId('status')).not.toHaveText('');
      await expect(page.getByTestId('connection')).toHaveText('Live');
      expect.soft(await violations(page), `job ${job.id}`).toEqual([]);
    }

    await page.goto(`${server.url}/submit`);
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    expect.soft(await violations(page), 'submit').toEqual([]);

    await page.goto(`${server.url}/queues`);
    await expect(page.getByRole('heading', { name: 'default' })).toBeVisible();
    expect.soft(await violations(page), 'queues').toEqual([]);

    await page.goto(`${server.url}/triggers`);
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    expect.soft(await violations(page), 'triggers').toEqual([]);
    await server.api.request('POST', `/v1/jobs/${running.id}/cancel`, {});
  });
}
