// Statistics of one feature view's offline data over a time range (GET /api/stats, computed by
// the offline engine and cached) and the current online values of a few entities.
import { h } from 'preact';
import { useState } from 'preact/hooks';
import htm from 'htm';
import { useApi, Problem } from '../hooks.js';
import { Chart } from '../chart.js';
import { num, pct, time } from '../format.js';

const html = htm.bind(h);

function Feature({ f }) {
  const isTime = f.type === 'timestamp';
  return html`<article class="feature-card" data-feature=${f.name}>
    <h3>${f.name} <code>${f.type}</code></h3>
    <dl class="facts">
      <dt>count</dt><dd data-stat="count">${num(f.count)}</dd>
      <dt>nulls</dt><dd data-stat="null_rate">${num(f.nulls)} (${pct(f.null_rate)})</dd>
      ${f.nan > 0 && html`<dt>NaN</dt><dd>${num(f.nan)}</dd>`}
      <dt>min</dt><dd data-stat="min">${f.min_text !== undefined ? f.min_text : num(f.min)}</dd>
      <dt>max</dt><dd data-stat="max">${f.max_text !== undefined ? f.max_text : num(f.max)}</dd>
      <dt>${f.type.startsWith('list') ? 'mean length' : 'mean'}</dt><dd data-stat="mean">${isTime ? '–' : num(f.mean)}</dd>
      <dt>distinct ≈</dt><dd data-stat="distinct">${num(f.distinct_estimate)}</dd>
    </dl>
    ${f.histogram.length > 0 && !isTime && html`<${Chart} id=${`hist-${f.name}`} title="Histogram" time=${false} height=${160}
        x=${f.histogram.map((b) => b.low)} series=${[{ label: 'rows', values: f.histogram.map((b) => b.count), bars: true }]} />`}
    ${f.top_values.length > 0 && html`<table class="top-values" data-chart=${`top-${f.name}`}>
      <caption>Most frequent${f.top_values_exact ? '' : ' (approximate)'}</caption>
      ${f.top_values.map((v) => html`<tr><td>${v.value}</td><td class="bar-cell"><span class="bar" style=${{ width: `${(100 * v.count) / Math.max(1, f.top_values[0].count)}%` }}></span></td><td class="n">${num(v.count)}</td></tr>`)}
    </table>`}
  </article>`;
}

function OnlineSample({ stats }) {
  const sample = stats.online_sample;
  if (!sample) return html`<p class="muted online-note">No online sample: ${stats.online_note}</p>`;
  const names = sample.metadata.feature_names;
  const rows = sample.results[0] ? sample.results[0].values.length : 0;
  return html`<table class="grid online-sample">
    <thead><tr>${names.map((n) => html`<th>${n}</th>`)}</tr></thead>
    <tbody>${Array.from({ length: rows }, (_, r) => html`<tr>
      ${sample.results.map((col, c) => html`<td class=${c < stats.join_keys.length ? 'key' : ''}>
        ${col.values[r] === null ? html`<span class="muted">null</span>` : typeof col.values[r] === 'number' && c >= stats.join_keys.length ? num(col.values[r], 6) : String(col.values[r])}
        ${c >= stats.join_keys.length && html`<div class=${`status ${col.statuses[r]}`}>${col.statuses[r]}</div>`}</td>`)}
    </tr>`)}</tbody>
  </table>`;
}

export function Data({ view }) {
  const registry = useApi('/api/registry');
  const [form, setForm] = useState({ start: '', end: '', bins: '20' });
  const [request, setRequest] = useState(null);
  const chosen = view || (registry.data && registry.data.registry.feature_views[0] && registry.data.registry.feature_views[0].name);
  const params = new URLSearchParams({ view: chosen || '' });
  const applied = request || { start: '', end: '', bins: '20', refresh: 0 };
  if (applied.start) params.set('start', applied.start);
  if (applied.end) params.set('end', applied.end);
  if (applied.bins) params.set('bins', applied.bins);
  if (applied.refresh) params.set('refresh', String(applied.refresh));
  const stats = useApi(chosen ? `/api/stats?${params}` : null);
  if (registry.error) return html`<${Problem} error=${registry.error} />`;
  if (!registry.data) return html`<p class="muted">Loading…</p>`;
  const views = registry.data.registry.feature_views;
  const submit = (e, refresh = 0) => {
    e.preventDefault();
    setRequest({ ...form, refresh });
  };
  const s = stats.data && stats.data.stats;
  return html`<section class="page" data-page-body="data">
    <h1>Data</h1>
    <form class="stats-form" onSubmit=${submit}>
      <label>feature view
        <select name="view" value=${chosen} onChange=${(e) => { window.location.hash = `#/data/${encodeURIComponent(e.target.value)}`; }}>
          ${views.map((v) => html`<option value=${v.name}>${v.name}</option>`)}
        </select></label>
      <label>from <input name="start" placeholder="2025-01-01T00:00:00Z" value=${form.start} onInput=${(e) => setForm({ ...form, start: e.target.value })} /></label>
      <label>to <input name="end" placeholder="(the last row)" value=${form.end} onInput=${(e) => setForm({ ...form, end: e.target.value })} /></label>
      <label>bins <input name="bins" type="number" min="1" max="1000" value=${form.bins} onInput=${(e) => setForm({ ...form, bins: e.target.value })} /></label>
      <button type="submit">Compute</button>
      <button type="button" onClick=${(e) => submit(e, Date.now())}>Recompute</button>
    </form>
    ${stats.loading && html`<p class="muted">Computing statistics over the offline data…</p>`}
    ${stats.error && html`<${Problem} error=${stats.error} />`}
    ${s && !stats.loading && html`<div class="stats" data-stats-view=${s.view} data-rows=${s.rows}>
      <p class="sub"><b>${num(s.rows)}</b>${` rows of ${s.view}, events ${time(s.first_event)} → ${time(s.last_event)} `
        + `(range ${s.start ? time(s.start) : 'the first row'} → ${s.end ? time(s.end) : 'the last row'}); `
        + `${s.scan.files} files (${s.scan.files_pruned} pruned); computed ${time(stats.data.computed_at)} `
        + `in ${num(s.elapsed_seconds, 3)}s${stats.data.cached ? ' (cached)' : ''}.`}</p>
      <div class="features">${s.features.map((f) => html`<${Feature} f=${f} />`)}</div>
      <h2>Online sample</h2>
      <p class="sub">The current online values of the entities with the newest rows.</p>
      <${OnlineSample} stats=${s} />
    </div>`}
  </section>`;
}
