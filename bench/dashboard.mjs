// (g) The dashboard with a large history, in Debian's Chromium: 100,000 jobs in the database,
// then what a user waits for. Prints one JSON line per figure, like runway-bench.
//
// Run: cargo build --release -p runway && (cd e2e && npm ci) && node bench/dashboard.mjs
// (RUNWAY_BIN overrides the server binary).
import { chromium } from '../e2e/node_modules/@playwright/test/index.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../e2e/fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
process.env.RUNWAY_BIN ||= path.join(here, '..', 'target', 'release', 'runway');

const JOBS = 100_000;
const BATCH = 10_000;
const BURST = 2_000;
const CONFIG = `
[server]
body_limit = 33554432

[queues.default]
concurrency = 8

[types.noop]
handler = "noop"
max_attempts = 1
`;

const print = (figure) => console.log(JSON.stringify(figure));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const server = await startServer(CONFIG);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  for (let done = 0; done < JOBS; done += BATCH) {
    const jobs = Array.from({ length: BATCH }, (_, n) => ({
      type: 'noop',
      input: { clip: `clip-${done + n}`, fps: 24 },
    }));
    await server.api.request('POST', '/v1/jobs/batch', { jobs });
  }
  while ((await server.api.request('GET', '/v1/jobs/count?status=succeeded')).count < JOBS) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const firstRow = page.locator('[data-testid="jobs-table"] tr[data-job-id]').first();
  const rows = page.locator('[data-testid="jobs-table"] tr[data-job-id]');

  // Cold load: sign-in link to the first rows on screen.
  let started = Date.now();
  await page.goto(`${server.url}/${new URL(server.signInUrl).hash}`);
  await firstRow.waitFor();
  print({ figure: 'g_first_rows_ms', jobs: JOBS, ms: Date.now() - started });

  // A warm reload, five times.
  const reloads = [];
  for (let i = 0; i < 5; i++) {
    started = Date.now();
    await page.reload();
    await firstRow.waitFor();
    reloads.push(Date.now() - started);
  }
  print({ figure: 'g_reload_to_rows_ms', runs: 5, ms_median: median(reloads), ms_max: Math.max(...reloads) });

  // Paging back through history: twenty "Load older" clicks, timed inside the page from the
  // click to the new rows in the DOM, and to the next frame painted after them.
  const pages = [];
  for (let i = 0; i < 20; i++) {
    pages.push(await page.evaluate(() => new Promise((resolve) => {
      const count = () => document.querySelectorAll('[data-testid="jobs-table"] tr[data-job-id]').length;
      const before = count();
      const button = [...document.querySelectorAll('button')].find((b) => b.textContent === 'Load older');
      const clicked = performance.now();
      const observer = new MutationObserver(() => {
        if (count() <= before) return;
        observer.disconnect();
        const dom = performance.now() - clicked;
        requestAnimationFrame(() => setTimeout(() => resolve({ dom, painted: performance.now() - clicked }), 0));
      });
      observer.observe(document.body, { childList: true, subtree: true });
      button.click();
    })));
  }
  const round = (ms) => Math.round(ms);
  print({
    figure: 'g_load_older_ms', pages: 20, rows_loaded: await rows.count(),
    to_dom_median: round(median(pages.map((p) => p.dom))),
    to_paint_median: round(median(pages.map((p) => p.painted))),
    to_paint_first: round(pages[0].painted), to_paint_last: round(pages[19].painted),
  });

  // A search that scans every input, typed into the box (250 ms debounce included).
  await page.goto(`${server.url}/`);
  await firstRow.waitFor();
  started = Date.now();
  await page.getByLabel('Search').fill('clip-77777"');
  await page.locator('[data-testid="jobs-table"] tr[data-job-id]').first().waitFor();
  await page.waitForFunction(
    () => document.querySelectorAll('[data-testid="jobs-table"] tr[data-job-id]').length === 1,
  );
  print({ figure: 'g_search_to_result_ms', jobs: JOBS, ms: Date.now() - started });

  // A live burst: 2,000 jobs submitted and run while the table is open. Long tasks on the
  // page's main thread say whether it stayed responsive.
  await page.goto(`${server.url}/`);
  await firstRow.waitFor();
  await page.evaluate(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
    }).observe({ type: 'longtask', buffered: false });
  });
  started = Date.now();
  const burst = Array.from({ length: BURST }, (_, n) => ({ type: 'noop', input: { burst: n } }));
  const submitted = await server.api.request('POST', '/v1/jobs/batch', { jobs: burst });
  const last = submitted.jobs[submitted.jobs.length - 1].id;
  await page
    .locator(`[data-testid="jobs-table"] tr[data-job-id="${last}"] [data-testid="status"]`)
    .filter({ hasText: 'succeeded' })
    .waitFor({ timeout: 120_000 });
  const longTasks = await page.evaluate(() => window.__longTasks);
  print({
    figure: 'g_live_burst', jobs: BURST, ms_until_last_shown_succeeded: Date.now() - started,
    long_tasks: longTasks.length, long_task_ms_max: Math.round(Math.max(0, ...longTasks)),
    long_task_ms_total: Math.round(longTasks.reduce((a, b) => a + b, 0)),
  });

  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const { metrics } = await cdp.send('Performance.getMetrics');
  const heap = metrics.find((metric) => metric.name === 'JSHeapUsedSize');
  const nodes = metrics.find((metric) => metric.name === 'Nodes');
  print({
    figure: 'g_page_after_burst', js_heap_mib: +(heap.value / 1048576).toFixed(1),
    dom_nodes: nodes.value, rows: await rows.count(),
  });
} finally {
  await browser.close();
  await server.stop();
}
