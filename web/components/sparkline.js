// A throughput sparkline drawn as inline SVG (no library): an area and a line over the counts.

import { setAttr, setText, svg } from '../dom.js';

const WIDTH = 180;
const HEIGHT = 36;
const PAD = 2;

export function createSparkline({ label = 'Throughput' } = {}) {
  const title = svg('title');
  const area = svg('path', { class: 'spark-area' });
  const line = svg('polyline', { class: 'spark-line', fill: 'none' });
  const baseline = svg('line', { class: 'spark-base', x1: '0', x2: String(WIDTH), y1: String(HEIGHT - PAD), y2: String(HEIGHT - PAD) });
  const el = svg('svg', {
    class: 'sparkline', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label, width: String(WIDTH), height: String(HEIGHT),
  }, title, baseline, area, line);
  let lastKey = '';
  /**
   * `values`: jobs finished per window, oldest first; the last is the current, unfinished
   * window. Only the complete windows are drawn: the current one would make every line dip at
   * its end (extrapolating it from the elapsed fraction would need the server's window start,
   * and swings wildly while few jobs have finished). The title's total counts all of them.
   */
  function update(values, bucketSeconds = 10) {
    const all = Array.isArray(values) ? values.map((v) => Math.max(0, Number(v) || 0)) : [];
    const counts = all.length > 1 ? all.slice(0, -1) : [0];
    const key = all.join(',');
    if (key === lastKey) return;
    lastKey = key;
    const max = Math.max(1, ...counts);
    const step = counts.length > 1 ? (WIDTH - PAD * 2) / (counts.length - 1) : 0;
    const points = counts.map((count, i) => {
      const x = PAD + i * step;
      const y = HEIGHT - PAD - (count / max) * (HEIGHT - PAD * 2);
      return [x, y];
    });
    const text = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    setAttr(line, 'points', text);
    const first = points[0];
    const last = points[points.length - 1];
    setAttr(area, 'd', `M${first[0].toFixed(1)},${HEIGHT - PAD} L${text.replaceAll(' ', ' L')} L${last[0].toFixed(1)},${HEIGHT - PAD} Z`);
    const total = all.reduce((a, b) => a + b, 0);
    const minutes = Math.round((all.length * bucketSeconds) / 60);
    setText(title, `${total} finished in the last ${minutes} min; peak ${Math.max(0, ...counts)} per ${bucketSeconds} s`);
  }
  return { el, update };
}
