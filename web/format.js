// Text formatting of times, durations and sizes.

export function parseTime(value) {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

const TIMES_KEY = 'runway.times';

/** Whether times show as clock times rather than "5m ago": the reader's choice, kept. */
export function absoluteTimes() {
  try {
    return localStorage.getItem(TIMES_KEY) === 'absolute';
  } catch {
    return false;
  }
}

export function setAbsoluteTimes(on) {
  try {
    localStorage.setItem(TIMES_KEY, on ? 'absolute' : 'relative');
  } catch {
    /* not kept: this page still follows the choice */
  }
}

const clockFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});

/**
 * "just now", "42s ago", "5m ago", "3h ago", "2d ago", then a date; or the clock time when the
 * reader chose absolute times.
 */
export function relative(value, now = Date.now()) {
  const ms = parseTime(value);
  if (ms === null) return '—';
  if (absoluteTimes()) return clockFormat.format(new Date(ms));
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 0) {
    const ahead = -seconds;
    if (ahead < 60) return `in ${ahead}s`;
    if (ahead < 3600) return `in ${Math.round(ahead / 60)}m`;
    if (ahead < 86400) return `in ${Math.round(ahead / 3600)}h`;
    return `in ${Math.round(ahead / 86400)}d`;
  }
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  if (seconds < 86400 * 7) return `${Math.floor(seconds / 86400)}d ago`;
  return new Date(ms).toLocaleDateString(undefined, { month: 'short', day: 'numeric', year: 'numeric' });
}

const exactFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});

/** The exact local time, for titles. */
export function exact(value) {
  const ms = parseTime(value);
  if (ms === null) return '';
  return `${exactFormat.format(new Date(ms))} (${value})`;
}

/** The clock time of an instant, to the millisecond (`14:03:07.250`), as a log line shows it. */
export function clockTime(value) {
  const ms = parseTime(value);
  if (ms === null) return '';
  const at = new Date(ms);
  const pad = (n, width = 2) => String(n).padStart(width, '0');
  return `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${pad(at.getMilliseconds(), 3)}`;
}

/** "850ms", "12.3s", "4m 05s", "2h 03m". */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const s = Math.floor(seconds) % 60;
  const m = Math.floor(seconds / 60) % 60;
  const hours = Math.floor(seconds / 3600);
  if (hours === 0) return `${m}m ${String(s).padStart(2, '0')}s`;
  if (hours < 48) return `${hours}h ${String(m).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** A job's duration: finished − started, or live while running. */
export function jobDuration(job, now = Date.now()) {
  const started = parseTime(job.started_at);
  if (started === null) return null;
  const finished = parseTime(job.finished_at);
  if (finished !== null) return finished - started;
  if (job.status === 'running') return now - started;
  return null;
}

export function bytes(n) {
  if (!n) return '0 B';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function plural(n, one, many = `${one}s`) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}
