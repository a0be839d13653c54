// What every browser test stands on: a real `runway serve` process with its own temporary
// data directory and configuration, its REST API for setting up jobs behind the page's back,
// and a TCP proxy that can drop the page's connections like a network blip.
import { test as base, expect } from '@playwright/test';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const RUNWAY = process.env.RUNWAY_BIN || path.join(here, '..', 'target', 'debug', 'runway');

// Job types the tests use: a schema with every kind of field, a job with progress and log
// lines, one that runs until cancelled, and one that fails.
export const CONFIG = `
[queues.default]
concurrency = 4

[queues.renders]
concurrency = 2

[types.greet]
command = ["sh", "-c", "echo \\"greeting $(cat)\\"; echo '::runway {\\"output\\": {\\"greeted\\": true}}'"]

[types.greet.schema]
type = "object"
required = ["name"]
additionalProperties = false

[types.greet.schema.properties.name]
type = "string"
minLength = 1

[types.greet.schema.properties.times]
type = "integer"
minimum = 1
maximum = 5

[types.greet.schema.properties.loud]
type = "boolean"

[types.greet.schema.properties.color]
enum = ["red", "green", "blue"]

[types.greet.schema.properties.tags]
type = "array"
items = { type = "string" }

[types.greet.schema.properties.size]
type = "object"
properties = { width = { type = "number" }, height = { type = "number" } }

[types.steps]
queue = "renders"
command = ["sh", "-c", "for p in 2 4 6 8; do echo \\"::runway {\\\\\\"progress\\\\\\": 0.$p, \\\\\\"message\\\\\\": \\\\\\"frame $p of 8\\\\\\"}\\"; echo \\"rendered frame $p\\"; sleep 1; done"]

[types.steps.schema]
type = "object"
properties = { scene = { type = "string" } }

[types.hold]
command = ["sh", "-c", "echo started; sleep 120"]

[types.broken]
command = ["sh", "-c", "echo 'about to fail' >&2; exit 3"]
max_attempts = 1
`;

/**
 * A config (for `startServer`) with a watch trigger on `notes/` in the server's directory and a
 * nightly schedule. The watch trigger's job waits for the file `release` (outside the watched
 * tree) and takes it, so a test decides when each run ends.
 */
export function withTriggers(dir, { cooldown = '2s' } = {}) {
  mkdirSync(path.join(dir, 'notes'));
  return `${CONFIG}
[types.rebuild]
command = ["sh", "-c", 'while [ ! -e "$RELEASE" ]; do sleep 0.05; done; rm "$RELEASE"']
env = { RELEASE = '${path.join(dir, 'release')}' }
max_attempts = 1

[triggers.notes]
watch = "notes"
patterns = ["*.org"]
ignore = ["archive/**"]
debounce = "300ms"
cooldown = "${cooldown}"
type = "rebuild"

[triggers.nightly]
cron = "0 3 * * *"
timezone = "Europe/Prague"
type = "greet"
input = { name = "night" }
`;
}

/**
 * Starts `runway serve` on a free loopback port; resolves once it listens. `config` is the
 * config file's text, or a function of the server's temporary directory (where the config file
 * lives) that makes what it needs there and returns the text.
 */
export async function startServer(config = CONFIG) {
  const dir = mkdtempSync(path.join(tmpdir(), 'runway-e2e-'));
  writeFileSync(path.join(dir, 'runway.toml'), typeof config === 'function' ? config(dir) : config);
  const child = spawn(
    RUNWAY,
    ['serve', '--config', path.join(dir, 'runway.toml'), '--data', path.join(dir, 'data'), '--listen', '127.0.0.1:0'],
    {
      env: { ...process.env, XDG_CONFIG_HOME: path.join(dir, 'xdg'), RUNWAY_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines = readline.createInterface({ input: child.stdout });
  const started = new Promise((resolve, reject) => {
    let url = null;
    let token = null;
    child.once('exit', (code) => reject(new Error(`runway serve exited with ${code} before listening`)));
    lines.on('line', (line) => {
      const created = line.match(/^ {2}(rwy_[0-9a-f]{64})$/);
      if (created) token = created[1];
      const listening = line.match(/^runway listening on (\S+)/);
      if (listening) url = listening[1];
      const link = line.match(/^runway: dashboard \(signs you in\): (\S+)$/);
      if (url && token && link) resolve({ url, signInUrl: link[1], token });
    });
  });
  const { url, signInUrl, token } = await started;
  return {
    url,
    signInUrl,
    token,
    dir,
    api: new Api(url, token),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The REST API with the admin token, for arranging what the page then shows. */
export class Api {
  constructor(url, token) {
    this.url = url;
    this.token = token;
  }

  async request(method, route, body) {
    const response = await fetch(this.url + route, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const value = text ? JSON.parse(text) : null;
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
    return value;
  }

  /** A fresh sign-in link (single use) for this Api's user, on `base`. */
  async signInLink(base = this.url) {
    const { code } = await this.request('POST', '/v1/auth/codes');
    return `${base}/#code=${code}`;
  }

  /** Adds a user; resolves to an Api with its first token. */
  async addUser(name, role) {
    const made = await this.request('POST', '/v1/users', { name, role });
    return new Api(this.url, made.secret);
  }

  submit(type, input, extra = {}) {
    return this.request('POST', '/v1/jobs', { type, input, ...extra });
  }

  job(id) {
    return this.request('GET', `/v1/jobs/${id}`);
  }

  /** Polls until the job is finished; returns it. */
  async finished(id, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.job(id);
      if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
      if (Date.now() > deadline) throw new Error(`job ${id} is still ${job.status}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * A TCP proxy in front of the server. `drop()` cuts every connection through it and refuses
 * new ones until `restore()`: what the page sees when the network blips.
 */
export async function startProxy(targetUrl) {
  const target = new URL(targetUrl);
  const sockets = new Set();
  let dropped = false;
  const server = net.createServer((client) => {
    if (dropped) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    drop() {
      dropped = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      dropped = false;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

export const test = base.extend({
  // A fresh server for every test, so no test sees another's jobs.
  server: async ({}, use) => {
    const server = await startServer();
    await use(server);
    await server.stop();
  },
  // Fail a test on any error the page throws or logs (CSP violations included).
  page: async ({ page }, use) => {
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !isExpectedNetworkError(message.text())) {
        problems.push(`console error: ${message.text()}`);
      }
    });
    await use(page);
    expect(problems, 'the page logged no errors').toEqual([]);
  },
});

// A refused request (the wrong-token test's 401, a dropped connection) is logged by Chromium
// itself; the tests assert on what the page shows instead.
function isExpectedNetworkError(text) {
  return /Failed to load resource|WebSocket connection to .* failed|net::ERR_/.test(text);
}

/** Signs the page in as the admin through a fresh sign-in link, confirming whose it is. */
export async function signIn(page, server, base = server.url) {
  await page.goto(await server.api.signInLink(base));
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByTestId('connection')).toHaveText('Live');
}

export { expect };
