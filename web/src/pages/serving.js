// The feature server's health and its own metrics over the last hours (GET /metrics/history).
import { h } from 'preact';
import { useEffect } from 'preact/hooks';
import htm from 'htm';
import { useApi, Problem } from '../hooks.js';
import { Chart } from '../chart.js';
import { epoch, ms, num, pct, time } from '../format.js';
import { ServerSummary } from './overview.js';

const html = htm.bind(h);

export function Serving() {
  const { data, error, reload } = useApi('/api/serving');
  useEffect(() => {
    const timer = setInterval(reload, 15000);
    return () => clearInterval(timer);
  }, []);
  if (error) return html`<${Problem} error=${error} />`;
  if (!data) return html`<p class="muted">Loading…</p>`;
  const samples = data.history ? data.history.samples : [];
  const x = samples.map((s) => epoch(s.at));
  const rate = samples.map((s) => (s.interval_seconds > 0 ? s.requests / s.interval_seconds : 0));
  const errors = samples.map((s) => (s.requests > 0 ? (100 * (s.client_errors + s.server_errors)) / s.requests : null));
  const withLatency = samples.filter((s) => s.latency_p50_seconds !== null);
  const latest = withLatency[withLatency.length - 1];
  const total = samples.reduce((n, s) => n + s.requests, 0);
  const totalErrors = samples.reduce((n, s) => n + s.client_errors + s.server_errors, 0);
  const toMs = (v) => (v === null ? null : v * 1000);
  return html`<section class="page" data-page-body="serving">
    <h1>Serving</h1>
    <${ServerSummary} data=${data} />
    ${data.error && data.reachable && html`<${Problem} error=${data.error} />`}
    ${data.history && html`
      <p class="sub">${`${samples.length} samples, one every ${data.history.interval_seconds}s: `}
        <b data-total-requests=${total}>${num(total)}</b>${` requests, ${num(totalErrors)} answered with an error (${pct(total ? totalErrors / total : 0)}).`}</p>
      ${samples.length === 0 ? html`<p class="muted">No sample yet: the server takes one every ${data.history.interval_seconds}s.</p>` : html`
      <div class="two">
        <${Chart} id="requests" title="Requests per interval" x=${x} series=${[{ label: 'requests', values: samples.map((s) => s.requests), bars: true }]} />
        <${Chart} id="rate" title="Request rate (per second)" x=${x} series=${[{ label: 'req/s', values: rate }]} />
        <${Chart} id="latency" title="Request latency (ms)" x=${x} yFormat=${(v) => `${v}`}
          series=${[{ label: 'p50', values: samples.map((s) => toMs(s.latency_p50_seconds)) }, { label: 'p99', values: samples.map((s) => toMs(s.latency_p99_seconds)), color: '#dc2626' }]} />
        <${Chart} id="errors" title="Errors (% of requests: 4xx and 5xx)" x=${x} series=${[{ label: '% errors', values: errors, color: '#dc2626' }]} />
        <${Chart} id="store" title="Online store read (ms)" x=${x}
          series=${[{ label: 'p50', values: samples.map((s) => toMs(s.store_read_p50_seconds)) }, { label: 'p99', values: samples.map((s) => toMs(s.store_read_p99_seconds)), color: '#dc2626' }]} />
        <${Chart} id="entities" title="Entities per request (mean)" x=${x} series=${[{ label: 'entities', values: samples.map((s) => s.entities_per_request), color: '#16a34a' }]} />
      </div>
      ${latest && html`<p class="muted">Latest interval with requests (${time(latest.at)}): p50 ${ms(latest.latency_p50_seconds)}, p99 ${ms(latest.latency_p99_seconds)}, ${num(latest.requests)} requests.</p>`}`}`}
  </section>`;
}
