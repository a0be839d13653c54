// The /v1/session WebSocket: hello/welcome, subscriptions that survive reconnects (a list
// resumes from the seq it holds with `since`), ping/pong to notice dead connections, and
// reconnect with jittered backoff. Incoming messages are handed over in batches (one reducer
// pass per burst, not one per message).

import { ApiError } from './api.js';

const PING_EVERY_MS = 20000;
const PONG_WITHIN_MS = 10000;
const HANDSHAKE_WITHIN_MS = 10000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10000;
const OFFLINE_AFTER_ATTEMPTS = 6;

/**
 * options:
 * - onMessages(messages): a batch of server messages, in order;
 * - onStatus(status, attempt, detail): 'connecting' | 'live' | 'reconnecting' | 'offline';
 * - onPolicyClose(reason): the server closed with 1008; resolves true to keep reconnecting.
 */
export function createSession(options) {
  const subscriptions = new Map(); // key -> {message, since}
  const pending = new Map(); // request id -> {resolve, reject}
  let socket = null;
  let ready = false; // welcome received
  let stopped = true;
  let attempt = 0;
  let reconnectTimer = null;
  let pingTimer = null;
  let pongTimer = null;
  let handshakeTimer = null;
  let requestCounter = 0;
  let batch = [];
  let flushTimer = null;

  function status(name, detail = '') {
    options.onStatus(name, attempt, detail);
  }

  function deliver(message) {
    batch.push(message);
    if (flushTimer === null) flushTimer = setTimeout(flush, 16);
  }

  function flush() {
    clearTimeout(flushTimer);
    flushTimer = null;
    if (!batch.length) return;
    const messages = batch;
    batch = [];
    options.onMessages(messages);
  }

  /**
   * The subscribe message of a slot: with `since` when its owner says it still holds the list
   * as of that seq (`fresh`: never, after a resync).
   */
  function subscribeMessage({ message, since }, { fresh = false } = {}) {
    const seq = !fresh && since ? since() : null;
    if (typeof seq !== 'number' || seq < 0) return message;
    return { ...message, since: seq };
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (stopped) return;
    if (navigator.onLine === false) {
      status('offline', 'the browser is offline; waiting for the network');
      return;
    }
    status(attempt === 0 ? 'connecting' : 'reconnecting', attempt ? `attempt ${attempt}` : 'connecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/v1/session`);
    socket = ws;
    ready = false;
    // A connection that neither opens nor closes (a half-open TCP path) must not hang the page.
    clearTimeout(handshakeTimer);
    handshakeTimer = setTimeout(() => {
      if (socket !== ws || ready) return;
      socket = null;
      try {
        ws.close(4001, 'no welcome');
      } catch {
        /* already closing */
      }
      dropped(4001, 'the server did not answer in time');
    }, HANDSHAKE_WITHIN_MS);
    ws.onopen = () => {
      if (socket !== ws) return;
      ws.send(JSON.stringify({ tag: 'hello' }));
    };
    ws.onmessage = (event) => {
      if (socket !== ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      handle(message);
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      dropped(event.code, event.reason);
    };
    ws.onerror = () => {}; // onclose follows with the code
  }

  function handle(message) {
    switch (message.tag) {
      case 'welcome':
        clearTimeout(handshakeTimer);
        ready = true;
        attempt = 0;
        status('live', `server ${message.version || ''}`.trim());
        startPing();
        deliver(message);
        // Everything received before is applied first, so `since` is what the page holds.
        flush();
        for (const subscription of subscriptions.values()) send(subscribeMessage(subscription));
        return;
      case 'frame':
        // A frame is a range of changes for one subscription: handed over as the `log` and
        // `job` messages it holds (a job's log text comes before its end).
        for (const log of message.logs || []) deliver({ ...log, tag: 'log', key: message.key });
        for (const update of message.jobs || []) deliver({ ...update, tag: 'job', keys: [message.key] });
        return;
      case 'pong':
        clearTimeout(pongTimer);
        pongTimer = null;
        return;
      case 'resync': {
        deliver(message);
        const subscription = subscriptions.get(message.key);
        if (subscription) send(subscribeMessage(subscription, { fresh: true }));
        return;
      }
      case 'reply':
      case 'error': {
        const waiter = message.id !== undefined && message.id !== null ? pending.get(message.id) : null;
        if (waiter) {
          pending.delete(message.id);
          if (message.tag === 'reply') waiter.resolve(message.value);
          else waiter.reject(new ApiError(0, message.code, message.message, message.details));
          return;
        }
        deliver(message);
        return;
      }
      default:
        deliver(message);
    }
  }

  function send(message) {
    if (socket && ready && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function startPing() {
    clearInterval(pingTimer);
    pingTimer = setInterval(() => {
      if (pongTimer !== null) return;
      if (!send({ tag: 'ping', id: `ping-${++requestCounter}` })) return;
      pongTimer = setTimeout(() => {
        pongTimer = null;
        // No pong: the connection is dead even if the browser has not noticed.
        const ws = socket;
        if (ws) {
          socket = null;
          try {
            ws.close(4000, 'no pong');
          } catch {
            /* already closing */
          }
        }
        dropped(4000, 'no answer to ping');
      }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  function teardown() {
    clearTimeout(handshakeTimer);
    clearInterval(pingTimer);
    clearTimeout(pongTimer);
    pingTimer = null;
    pongTimer = null;
    ready = false;
    for (const waiter of pending.values()) {
      waiter.reject(new ApiError(0, 'network', 'the connection to the server was lost; try again'));
    }
    pending.clear();
  }

  async function dropped(code, reason) {
    socket = null;
    teardown();
    if (stopped) return;
    if (code === 1008) {
      status('reconnecting', reason || 'closed by the server');
      const keepGoing = await options.onPolicyClose(reason);
      if (!keepGoing || stopped) return;
    }
    scheduleReconnect(reason);
  }

  function scheduleReconnect(reason) {
    attempt += 1;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (attempt - 1));
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    const why = reason ? `${reason}; ` : '';
    if (attempt >= OFFLINE_AFTER_ATTEMPTS) {
      status('offline', `${why}retrying in ${Math.ceil(delay / 1000)} s (attempt ${attempt})`);
    } else {
      status('reconnecting', `${why}attempt ${attempt}, next try in ${(delay / 1000).toFixed(1)} s`);
    }
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, delay);
  }

  window.addEventListener('online', () => {
    if (!stopped && !socket) {
      attempt = 0;
      connect();
    }
  });
  window.addEventListener('offline', () => {
    if (!stopped && !ready) status('offline', 'the browser is offline');
  });

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      attempt = 0;
      connect();
    },
    stop() {
      stopped = true;
      clearTimeout(reconnectTimer);
      const ws = socket;
      socket = null;
      teardown();
      if (ws) ws.close(1000, 'signed out');
      subscriptions.clear();
    },
    /**
     * Keeps `key` subscribed, now and after every reconnect. `since()` (optional) gives the
     * seq as of which the page still holds what this subscription shows, or null: the
     * subscribe then asks only for what changed after it.
     */
    subscribe(key, body, { since = null } = {}) {
      const subscription = { message: { tag: 'subscribe', key, ...body }, since };
      subscriptions.set(key, subscription);
      send(subscribeMessage(subscription));
    },
    unsubscribe(key) {
      if (subscriptions.delete(key)) send({ tag: 'unsubscribe', key });
    },
    /** submit / cancel / retry / more over the session; resolves with the reply's value. */
    request(tag, fields) {
      const id = `r${++requestCounter}`;
      return new Promise((resolve, reject) => {
        if (!send({ tag, id, ...fields })) {
          reject(new ApiError(0, 'network', 'not connected to the server; try again in a moment'));
          return;
        }
        pending.set(id, { resolve, reject });
      });
    },
    get live() {
      return ready;
    },
  };
}
