// A queue's history over a chosen span (15 min, 1 h, 24 h, 7 d), as two SVG charts with axes:
// jobs finished per bucket (succeeded, cancelled and failed stacked; failures red only where
// there are any) and the p50/p95 of wait and run time. Hovering or the arrow keys pick a bucket,
// whose values the readout says; the same data is there as a table. Read again every 10 s for
// the short spans, less often for the long ones, whose read costs more and changes less.

import { api } from '../api.js';
import { h, replaceChildren, setAttr, setText, svg } from '../dom.js';
import { duration } from '../format.js';

const RANGES = [['15m', '15 min'], ['1h', '1 h'], ['24h', '24 h'], ['7d', '7 d']];
const REFRESH_MS = { '15m': 10_000, '1h': 10_000, '24h': 60_000, '7d': 300_000 };
const WIDTH = 960;
const HEIGHT = 180;
const LEFT = 56;
const BOTTOM = 22;
const TOP = 8;
const PLOT_W = WIDTH - LEFT - 8;
const PLOT_H = HEIGHT - TOP - BOTTOM;
const LINES = [
  ['wait_p50_ms', 'wait p50', 'line-wait50'],
  ['wait_p95_ms', 'wait p95', 'line-wait95'],
  ['run_p50_ms', 'run p50', 'line-run50'],
  ['run_p95_ms', 'run p95', 'line-run95'],
];

/** A time on an axis: the clock for spans within a day, the weekday and hour for a week. */
function axisTime(iso, range) {
  const at = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  const clock = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
  return range === '7d' ? `${at.toLocaleDateString(undefined, { weekday: 'short' })} ${clock}` : clock;
}

const ms = (value) => (value === null || value === undefined ? '—' : duration(value));

export function createQueueHistory() {
  const queueSelect = h('select', { id: 'history-queue', class: 'select', onchange: () => {
    picked = -1;
    load();
  } });
  const rangeButtons = RANGES.map(([value, label]) => h('button', {
    type: 'button', class: 'chip', 'aria-pressed': value === '1h' ? 'true' : 'false', dataset: { range: value },
    'aria-label': `History of the last ${label}`, onclick: () => setRange(value),
  }, label));
  let range = '1h';
  const readout = h('p', { class: 'history-readout small', role: 'status', dataset: { testid: 'history-readout' } });
  const note = h('p', { class: 'muted small', hidden: true });

  const countsChart = chart('Jobs finished per bucket', 'history-counts');
  const timesChart = chart('Wait and run time, p50 and p95', 'history-times');
  const legend = h('ul', { class: 'history-legend small' },
    h('li', null, h('span', { class: 'swatch bar-succeeded' }), 'succeeded'),
    h('li', null, h('span', { class: 'swatch bar-cancelled' }), 'cancelled'),
    h('li', null, h('span', { class: 'swatch bar-failed' }), 'failed'),
    LINES.map(([, label, cls]) => h('li', null, h('span', { class: `swatch ${cls}` }), label)));
  const tableBody = h('tbody');
  const table = h('details', { class: 'history-table' }, h('summary', null, 'Show as a table'),
    h('div', { class: 'table-scroll' }, h('table', { class: 'data-table small' },
      h('thead', null, h('tr', null, ['Bucket', 'Succeeded', 'Failed', 'Cancelled', 'Wait p50', 'Wait p95', 'Run p50', 'Run p95']
        .map((label) => h('th', { scope: 'col' }, label)))),
      tableBody)));

  const el = h('section', { class: 'card queue-history', 'aria-labelledby': 'history-title', dataset: { testid: 'queue-history' } },
    h('div', { class: 'card-head' },
      h('h2', { id: 'history-title', class: 'card-title' }, 'History'),
      h('div', { class: 'card-head-end' },
        h('label', { for: 'history-queue', class: 'small' }, 'Queue'), queueSelect,
        h('div', { class: 'chips', role: 'group', 'aria-label': 'Span' }, rangeButtons))),
    countsChart.el, timesChart.el, legend, readout, note, table);

  let history = null;
  let picked = -1;
  // Each read is numbered: an answer older than the newest read asked for is dropped.
  let reads = 0;

  function chart(label, testid) {
    const plot = svg('g');
    const axes = svg('g', { class: 'chart-axes' });
    const cursor = svg('line', { class: 'chart-cursor', y1: String(TOP), y2: String(TOP + PLOT_H), visibility: 'hidden' });
    const canvas = svg('svg', {
      class: 'chart', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': label, dataset: { testid },
    }, axes, plot, cursor);
    const wrap = h('figure', { class: 'chart-figure', tabindex: '0', 'aria-label': `${label}: arrows pick a bucket` },
      h('figcaption', { class: 'small muted' }, label), canvas);
    const pick = (event) => {
      if (!history) return;
      const box = canvas.getBoundingClientRect();
      const x = ((event.clientX - box.left) / box.width) * WIDTH - LEFT;
      const index = Math.floor((x / PLOT_W) * history.buckets.length);
      if (index >= 0 && index < history.buckets.length) pickBucket(index);
    };
    canvas.addEventListener('mousemove', pick);
    wrap.addEventListener('keydown', (event) => {
      if (!history || !['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(event.key)) return;
      event.preventDefault();
      const last = history.buckets.length - 1;
      const from = picked < 0 ? last : picked;
      const next = { ArrowLeft: from - 1, ArrowRight: from + 1, Home: 0, End: last }[event.key];
      pickBucket(Math.min(last, Math.max(0, next)));
    });
    return { el: wrap, plot, axes, cursor };
  }

  function setRange(value) {
    range = value;
    // Another span has other buckets: start again from the newest.
    picked = -1;
    for (const button of rangeButtons) setAttr(button, 'aria-pressed', button.dataset.range === value ? 'true' : 'false');
    load();
  }

  async function load() {
    const queue = queueSelect.value;
    if (!queue || document.hidden) return;
    reads += 1;
    const read = reads;
    lastRead = Date.now();
    try {
      const answer = await api.queueHistory(queue, range);
      if (read !== reads) return;
      history = answer;
      draw();
    } catch (error) {
      if (read === reads) setText(readout, `Could not load the history of queue ${queue}: ${error.message}`);
    }
  }

  /** The y axis of a chart: gridlines at 0, half and the top, labelled by `format`. */
  function yAxis(target, top, format) {
    const marks = [0, top / 2, top];
    replaceChildren(target, marks.map((value) => {
      const y = TOP + PLOT_H - (top ? (value / top) * PLOT_H : 0);
      return [
        svg('line', { class: 'chart-grid', x1: String(LEFT), x2: String(LEFT + PLOT_W), y1: String(y), y2: String(y) }),
        svg('text', { class: 'chart-label', x: String(LEFT - 6), y: String(y + 4), 'text-anchor': 'end' }, format(value)),
      ];
    }), xLabels());
  }

  function xLabels() {
    const buckets = history.buckets;
    const at = [0, Math.floor(buckets.length / 2), buckets.length - 1];
    return at.map((index, n) => svg('text', {
      class: 'chart-label', y: String(HEIGHT - 6),
      x: String(LEFT + ((index + 0.5) / buckets.length) * PLOT_W), 'text-anchor': ['start', 'middle', 'end'][n],
    }, axisTime(buckets[index].start, history.range)));
  }

  function draw() {
    const buckets = history.buckets;
    const step = PLOT_W / buckets.length;
    const totals = buckets.map((b) => b.succeeded + b.failed + b.cancelled);
    const topCount = Math.max(1, ...totals);
    yAxis(countsChart.axes, topCount, (value) => (Number.isInteger(value) ? value.toLocaleString() : ''));
    const bars = [];
    buckets.forEach((bucket, index) => {
      let y = TOP + PLOT_H;
      for (const [key, cls] of [['succeeded', 'bar-succeeded'], ['cancelled', 'bar-cancelled'], ['failed', 'bar-failed']]) {
        const height = (bucket[key] / topCount) * PLOT_H;
        if (!height) continue;
        y -= height;
        bars.push(svg('rect', { class: cls, x: String(LEFT + index * step + 0.5), y: String(y), width: String(Math.max(1, step - 1)), height: String(height) }));
      }
    });
    replaceChildren(countsChart.plot, bars);

    const values = buckets.flatMap((b) => LINES.map(([key]) => b[key]).filter((v) => v !== null && v !== undefined));
    const topMs = Math.max(1, ...values);
    yAxis(timesChart.axes, topMs, (value) => (value ? duration(value) : '0'));
    replaceChildren(timesChart.plot, LINES.map(([key, , cls]) => {
      const points = [];
      buckets.forEach((bucket, index) => {
        const value = bucket[key];
        if (value === null || value === undefined) return;
        points.push(`${(LEFT + (index + 0.5) * step).toFixed(1)},${(TOP + PLOT_H - (value / topMs) * PLOT_H).toFixed(1)}`);
      });
      return points.length > 1
        ? svg('polyline', { class: `chart-line ${cls}`, fill: 'none', points: points.join(' ') })
        : points.map((point) => {
          const [cx, cy] = point.split(',');
          return svg('circle', { class: `chart-dot ${cls}`, cx, cy, r: '2.5' });
        });
    }));

    note.hidden = !history.sampled;
    setText(note, history.sampled ? 'Wait and run times are from an even sample of the jobs; the counts are exact.' : '');
    replaceChildren(tableBody, buckets.filter((b, index) => totals[index] > 0).map((b) => h('tr', null,
      h('td', null, axisTime(b.start, history.range)), h('td', { class: 'num' }, b.succeeded.toLocaleString()),
      h('td', { class: 'num' }, b.failed.toLocaleString()), h('td', { class: 'num' }, b.cancelled.toLocaleString()),
      LINES.map(([key]) => h('td', { class: 'num' }, ms(b[key]))))));
    pickBucket(picked >= 0 && picked < buckets.length ? picked : buckets.length - 1);
  }

  function pickBucket(index) {
    picked = index;
    const bucket = history.buckets[index];
    const x = String(LEFT + (index + 0.5) * (PLOT_W / history.buckets.length));
    for (const c of [countsChart, timesChart]) {
      setAttr(c.cursor, 'x1', x);
      setAttr(c.cursor, 'x2', x);
      setAttr(c.cursor, 'visibility', 'visible');
    }
    const from = axisTime(bucket.start, history.range);
    setText(readout, `${from} (${duration(history.bucket_seconds * 1000)}): ${bucket.succeeded.toLocaleString()} succeeded, `
      + `${bucket.failed.toLocaleString()} failed, ${bucket.cancelled.toLocaleString()} cancelled; `
      + `wait p50 ${ms(bucket.wait_p50_ms)}, p95 ${ms(bucket.wait_p95_ms)}; run p50 ${ms(bucket.run_p50_ms)}, p95 ${ms(bucket.run_p95_ms)}`);
    readout.classList.toggle('has-failures', bucket.failed > 0);
  }

  // Ticks every 10 s; a read is due once its span's interval has passed since the last one.
  let lastRead = 0;
  const timer = setInterval(() => {
    if (Date.now() - lastRead >= REFRESH_MS[range]) load();
  }, 10_000);
  return {
    el,
    /** The queues to choose from; the first is shown until another is chosen. */
    setQueues(names) {
      const current = [...queueSelect.options].map((option) => option.value);
      if (current.join('\n') === names.join('\n')) return;
      const chosen = queueSelect.value;
      replaceChildren(queueSelect, names.map((name) => h('option', { value: name }, name)));
      queueSelect.value = names.includes(chosen) ? chosen : names[0] || '';
      el.hidden = !names.length;
      load();
    },
    destroy() {
      clearInterval(timer);
    },
  };
}
