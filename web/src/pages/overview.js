// The first screen: what the registry holds, which views are stale or failing (they stand out),
// and whether the feature server is healthy.
import { h } from 'preact';
import htm from 'htm';
import { useApi, Problem } from '../hooks.js';
import { age, time } from '../format.js';

const html = htm.bind(h);

export function Overview() {
  const registry = useApi('/api/registry');
  const freshness = useApi('/api/freshness');
  const serving = useApi('/api/serving');
  const reg = registry.data && registry.data.registry;
  const views = freshness.data ? freshness.data.views : [];
  const stale = views.filter((v) => v.stale);
  const failing = views.filter((v) => v.failing);
  const features = reg ? reg.feature_views.reduce((n, v) => n + v.schema.length, 0) : 0;
  return html`<section class="page" data-page-body="overview">
    <h1>${reg ? reg.project : 'Granary'}</h1>
    ${registry.error && html`<${Problem} error=${registry.error} />`}
    ${reg && html`<p class="sub">Registry version ${reg.version}, applied ${time(reg.applied_at)}</p>
      <div class="tiles">
        <a class="tile" href="#/registry/entity"><b>${reg.entities.length}</b> entities</a>
        <a class="tile" href="#/registry/data_source"><b>${reg.data_sources.length}</b> data sources</a>
        <a class="tile" href="#/registry/feature_view"><b>${reg.feature_views.length}</b> feature views</a>
        <a class="tile" href="#/registry/feature_view"><b>${features}</b> features</a>
        <a class="tile" href="#/registry/feature_service"><b>${reg.feature_services.length}</b> feature services</a>
      </div>`}
    ${freshness.error && html`<${Problem} error=${freshness.error} />`}
    ${freshness.data && html`
      ${stale.length > 0 && html`<div class="alert stale-alert" role="alert" data-stale-views=${stale.map((v) => v.view).join(',')}>
        <b>${stale.length} stale view${stale.length > 1 ? 's' : ''}</b> (older than ${freshness.data.max_staleness}):
        ${stale.map((v) => html` <a href=${`#/freshness/${encodeURIComponent(v.view)}`}>${v.view}</a>${
          ` (${v.staleness_seconds !== null ? `${age(v.staleness_seconds)} old` : 'never materialized'})`}`)}
      </div>`}
      ${failing.length > 0 && html`<div class="alert failing-alert" role="alert">
        <b>Failing:</b> ${failing.map((v) => html` <a href=${`#/freshness/${encodeURIComponent(v.view)}`}>${v.view}</a> (${v.consecutive_failures} in a row)`)}
      </div>`}
      ${stale.length === 0 && failing.length === 0 && html`<div class="ok">Every online view is fresher than ${freshness.data.max_staleness}.</div>`}
      <h2>Freshness</h2>
      <table class="grid freshness-table">
        <thead><tr><th>view</th><th>watermark</th><th>staleness</th><th>data age</th><th>last run</th><th>state</th></tr></thead>
        <tbody>${views.map((v) => html`<tr class=${v.stale ? 'is-stale' : ''} data-view=${v.view}>
          <td><a href=${`#/freshness/${encodeURIComponent(v.view)}`}>${v.view}</a></td>
          <td>${v.watermark ? time(v.watermark) : v.last_push ? `none; last push ${time(v.last_push.at)}` : '–'}</td>
          <td>${v.staleness_seconds === null ? 'never' : age(v.staleness_seconds)}</td>
          <td>${age(v.data_age_seconds)}</td>
          <td>${v.runs.length ? `${v.runs[0].status} ${time(v.runs[0].finished_at || v.runs[0].started_at)}` : '–'}</td>
          <td>${v.stale ? html`<span class="badge bad">stale</span>` : html`<span class="badge good">fresh</span>`}
              ${v.failing && html` <span class="badge bad">failing</span>`}</td>
        </tr>`)}</tbody>
      </table>`}
    <h2>Serving</h2>
    ${serving.error && html`<${Problem} error=${serving.error} />`}
    ${serving.data && html`<${ServerSummary} data=${serving.data} />`}
  </section>`;
}

export function ServerSummary({ data }) {
  if (!data.server) return html`<p class="muted">${data.note}</p>`;
  if (!data.reachable) {
    return html`<div class="alert" role="alert">Feature server ${data.server} is unreachable: ${data.error}</div>`;
  }
  const health = data.health || {};
  // "overloaded": the server shed the /health request itself (a 503 from its limits); the
  // console's API says so with the server's message.
  const state = health.status || 'unknown';
  return html`<p>Feature server <code>${data.server}</code>:
    <span class=${`badge ${state === 'ok' ? 'good' : 'bad'}`} data-health=${state}>${state}</span>
    ${health.message && html` <span class="health-message">${health.message}</span>`}
    ${health.store && html` store ${health.store.describe}`}
    · <a href="#/serving">metrics</a></p>`;
}
