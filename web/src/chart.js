// A uPlot chart as a Preact component. The numbers it draws are also written on the element
// (data-x and data-series, JSON) so that tests and scripts can read what the chart holds.
import { h } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const html = htm.bind(h);
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c'];

// The x range, padded by half a step when the chart has bars (so that the first and last bars
// are whole) and around a single point (which uPlot would otherwise stretch over years).
function xRange(x, time, bars) {
  if (x.length === 0) return undefined;
  let step = time ? 3600 : 1;
  for (let i = 1; i < x.length; i++) step = Math.min(step, Math.max(x[i] - x[i - 1], 1e-9));
  const lo = Math.min(...x);
  const hi = Math.max(...x);
  if (lo === hi) return [lo - step, hi + step];
  return bars ? [lo - step / 2, hi + step / 2] : [lo, hi];
}

// series: [{label, values, color?, bars?, dash?}]; x: numbers (unix seconds when time is true).
// integerX: x holds whole numbers (run ids): ticks only on them.
export function Chart({ id, title, x, series, time = true, height = 200, yLabel = '', xLabel = '',
                        yFormat = null, integerX = false }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current) return undefined;
    const width = Math.max(320, box.current.clientWidth || 600);
    const opts = {
      width,
      height,
      scales: { x: { time, auto: false, range: xRange(x, time, series.some((s) => s.bars)) } },
      legend: { show: true, live: false },
      axes: [
        integerX
          ? { label: xLabel, stroke: '#475569', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
            values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) }
          : { label: xLabel, stroke: '#475569' },
        { label: yLabel, stroke: '#475569', size: 70,
          values: yFormat ? (u, ticks) => ticks.map(yFormat) : undefined },
      ],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color || COLORS[i % COLORS.length],
          fill: s.bars ? `${s.color || COLORS[i % COLORS.length]}55` : undefined,
          width: s.bars ? 1 : 2,
          dash: s.dash,
          points: { show: x.length < 60 },
          paths: s.bars ? uPlot.paths.bars({ size: [0.8, 60] }) : undefined,
          spanGaps: false,
        })),
      ],
    };
    const plot = new uPlot(opts, [x, ...series.map((s) => s.values)], box.current);
    return () => plot.destroy();
  }, [JSON.stringify(x), JSON.stringify(series), height]);
  return html`<figure class="chart" data-chart=${id} data-x=${JSON.stringify(x)}
      data-series=${JSON.stringify(series.map((s) => ({ label: s.label, values: s.values })))}>
    <figcaption>${title}</figcaption>
    <div ref=${box}></div>
  </figure>`;
}
