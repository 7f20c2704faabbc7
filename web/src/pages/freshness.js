// Freshness per online view: the watermark's age over time against the staleness threshold,
// rows and entities written per run, run durations and failures, the last push of push views.
import { h } from 'preact';
import { useEffect } from 'preact/hooks';
import htm from 'htm';
import { useApi, Problem } from '../hooks.js';
import { Chart } from '../chart.js';
import { age, epoch, num, time } from '../format.js';

const html = htm.bind(h);

function ViewFreshness({ v, threshold, maxStaleness }) {
  const finished = v.runs.filter((r) => r.finished_at).slice().reverse();  // oldest first
  const ageX = v.age_series.map(([t]) => epoch(t));
  const ageHours = v.age_series.map(([, s]) => s / 3600);
  return html`<article class=${`view-card ${v.stale ? 'is-stale' : ''}`} id=${`view-${v.view}`} data-view=${v.view} data-stale=${String(v.stale)}>
    <h2>${v.view} ${v.stale ? html`<span class="badge bad">stale</span>` : html`<span class="badge good">fresh</span>`}
      ${v.failing && html`<span class="badge bad">${v.consecutive_failures} failed in a row</span>`}
      ${v.running && html`<span class="badge">running</span>`}</h2>
    <dl class="facts">
      <dt>watermark</dt><dd>${time(v.watermark)}</dd>
      <dt>staleness</dt><dd class="staleness">${v.staleness_seconds === null ? 'never materialized' : age(v.staleness_seconds)} (threshold ${maxStaleness})</dd>
      <dt>newest data online</dt><dd>${time(v.newest_event)} (${age(v.data_age_seconds)} old)</dd>
      <dt>success</dt><dd>${v.recent_succeeded} of the last ${v.recent_runs} runs</dd>
      ${v.push_view && html`<dt>last push</dt><dd class="last-push">${v.last_push ? `${time(v.last_push.at)} (${age(v.last_push.age_seconds)} ago, ${num(v.last_push.rows)} rows pushed)` : 'never pushed'}</dd>`}
      ${v.layout_changed && html`<dt>schema</dt><dd>changed since the last run: materialize it again</dd>`}
    </dl>
    ${ageX.length > 0 && html`<${Chart} id=${`age-${v.view}`} title="Watermark age (hours) and the staleness threshold"
        x=${ageX} yLabel="hours"
        series=${[{ label: 'age', values: ageHours }, { label: 'threshold', values: ageX.map(() => threshold / 3600), color: '#dc2626', dash: [6, 4] }]} />`}
    ${finished.length > 0 && html`<div class="two">
      <${Chart} id=${`runs-${v.view}`} title="Rows read and entities written per run" time=${false} integerX=${true} xLabel="run #"
        x=${finished.map((r) => r.id)}
        series=${[{ label: 'rows read', values: finished.map((r) => r.rows_read), bars: true }, { label: 'entities written', values: finished.map((r) => r.entities_written), color: '#16a34a' }]} />
      <${Chart} id=${`durations-${v.view}`} title="Run duration (seconds); failed runs in red" time=${false} integerX=${true} xLabel="run #"
        x=${finished.map((r) => r.id)}
        series=${[{ label: 'succeeded', values: finished.map((r) => (r.status === 'failed' ? null : r.duration_seconds)), bars: true, color: '#9333ea' }, { label: 'failed', values: finished.map((r) => (r.status === 'failed' ? r.duration_seconds : null)), bars: true, color: '#dc2626' }]} />
    </div>`}
    <details open=${v.failing}>
      <summary>${v.runs.length} run${v.runs.length === 1 ? '' : 's'}</summary>
      <table class="grid runs"><thead><tr><th>#</th><th>status</th><th>trigger</th><th>interval</th><th>finished</th><th>rows read</th><th>entities written</th><th>error</th></tr></thead>
        <tbody>${v.runs.map((r) => html`<tr class=${r.status === 'failed' ? 'failed' : ''} data-run=${r.id}>
          <td>${r.id}</td><td>${r.status}</td><td>${r.trigger}</td>
          <td>${r.interval_start ? time(r.interval_start) : '…'} → ${time(r.interval_end)}</td>
          <td>${time(r.finished_at)}</td><td>${num(r.rows_read)}</td><td>${num(r.entities_written)}</td>
          <td class="error">${r.error}</td></tr>`)}</tbody></table>
    </details>
  </article>`;
}

export function Freshness({ focus }) {
  const { data, error } = useApi('/api/freshness');
  useEffect(() => {
    if (data && focus) {
      const el = document.getElementById(`view-${focus}`);
      if (el) el.scrollIntoView();
    }
  }, [data, focus]);
  if (error) return html`<${Problem} error=${error} />`;
  if (!data) return html`<p class="muted">Loading…</p>`;
  const stale = data.views.filter((v) => v.stale);
  return html`<section class="page" data-page-body="freshness">
    <h1>Freshness</h1>
    <p class="sub">As of ${time(data.now)}; a view whose watermark (or last push) is older than ${data.max_staleness} is stale.</p>
    ${stale.length > 0 && html`<div class="alert stale-alert" role="alert">Stale: ${stale.map((v) => v.view).join(', ')}</div>`}
    ${data.views.length === 0 && html`<p class="muted">No online feature views.</p>`}
    ${data.views.map((v) => html`<${ViewFreshness} v=${v} threshold=${data.max_staleness_seconds} maxStaleness=${data.max_staleness} />`)}
  </section>`;
}
