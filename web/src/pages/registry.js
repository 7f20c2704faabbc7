// The registry: entities, data sources, feature views (schema, ttl, source, tags, owner,
// online), feature services; one object's details; search across all of them.
import { h } from 'preact';
import htm from 'htm';
import { useApi, Problem } from '../hooks.js';
import { time } from '../format.js';

const html = htm.bind(h);

const KINDS = [
  ['feature_view', 'Feature views', 'feature_views'],
  ['entity', 'Entities', 'entities'],
  ['data_source', 'Data sources', 'data_sources'],
  ['feature_service', 'Feature services', 'feature_services'],
];

export function link(kind, name) {
  return `#/registry/${kind}/${encodeURIComponent(name)}`;
}

function Tags({ tags }) {
  if (!tags) return null;
  return html`${Object.entries(tags).map(([k, v]) => html`<span class="tag">${k}=${v}</span> `)}`;
}

function ViewDetail({ view, reg }) {
  const services = reg.feature_services.filter((s) => s.features.some((p) => p.view === view.name));
  return html`<div class="detail" data-object=${`feature_view:${view.name}`}>
    <h2>Feature view ${view.name}</h2>
    ${view.description && html`<p>${view.description}</p>`}
    <dl>
      <dt>entities</dt><dd>${view.entities.map((e) => html`<a href=${link('entity', e)}>${e}</a> `)}</dd>
      <dt>source</dt><dd><a href=${link('data_source', view.source)}>${view.source}</a></dd>
      <dt>ttl</dt><dd>${view.ttl}</dd>
      <dt>online</dt><dd>${view.online ? 'yes' : 'no'}${view.online_key_ttl ? ` (key ttl ${view.online_key_ttl})` : ''}</dd>
      <dt>owner</dt><dd>${view.owner || '–'}</dd>
      <dt>tags</dt><dd><${Tags} tags=${view.tags} /></dd>
      <dt>services</dt><dd>${services.length ? services.map((s) => html`<a href=${link('feature_service', s.name)}>${s.name}</a> `) : '–'}</dd>
    </dl>
    <p><a href=${`#/data/${encodeURIComponent(view.name)}`}>Statistics of its data</a> ·
       <a href=${`#/freshness/${encodeURIComponent(view.name)}`}>freshness</a></p>
    <table class="grid"><thead><tr><th>feature</th><th>type</th><th>description</th></tr></thead>
      <tbody>${view.schema.map((f) => html`<tr data-feature=${`${view.name}:${f.name}`}><td>${f.name}</td><td><code>${f.type}</code></td><td>${f.description || ''}</td></tr>`)}</tbody>
    </table>
  </div>`;
}

function Detail({ kind, name, reg }) {
  const list = reg[KINDS.find(([k]) => k === kind)[2]];
  const obj = list.find((o) => o.name === name);
  if (!obj) return html`<${Problem} error=${`no ${kind.replace('_', ' ')} named ${name}`} />`;
  if (kind === 'feature_view') return html`<${ViewDetail} view=${obj} reg=${reg} />`;
  const views = reg.feature_views.filter((v) =>
    (kind === 'entity' && v.entities.includes(name)) || (kind === 'data_source' && v.source === name));
  return html`<div class="detail" data-object=${`${kind}:${name}`}>
    <h2>${kind.replace('_', ' ')} ${name}</h2>
    ${obj.description && html`<p>${obj.description}</p>`}
    <dl>${Object.entries(obj).filter(([k]) => !['name', 'description', 'features', 'tags'].includes(k)).map(([k, v]) =>
      html`<dt>${k}</dt><dd>${typeof v === 'object' ? JSON.stringify(v) : String(v)}</dd>`)}
      ${obj.tags && html`<dt>tags</dt><dd><${Tags} tags=${obj.tags} /></dd>`}
    </dl>
    ${kind === 'feature_service' && html`<table class="grid"><thead><tr><th>view</th><th>features</th></tr></thead>
      <tbody>${obj.features.map((p) => html`<tr><td><a href=${link('feature_view', p.view)}>${p.view}</a></td><td>${p.features ? p.features.join(', ') : 'all'}</td></tr>`)}</tbody></table>`}
    ${views.length > 0 && html`<p>Feature views: ${views.map((v) => html`<a href=${link('feature_view', v.name)}>${v.name}</a> `)}</p>`}
  </div>`;
}

function Summary({ kind, obj }) {
  if (kind === 'feature_view') {
    return html`${obj.schema.length} features · ttl ${obj.ttl} · source ${obj.source}${obj.online ? '' : ' · offline only'}${obj.owner ? ` · ${obj.owner}` : ''}`;
  }
  if (kind === 'entity') return html`join keys ${obj.join_keys.join(', ')} (${obj.value_types.join(', ')})`;
  if (kind === 'data_source') return html`${obj.type}${obj.path ? ` · ${obj.path}` : ''}${obj.batch_source ? ` · batch source ${obj.batch_source}` : ''}`;
  return html`${obj.features.length} views${obj.owner ? ` · ${obj.owner}` : ''}`;
}

export function Registry({ path }) {
  const { data, error } = useApi('/api/registry');
  if (error) return html`<${Problem} error=${error} />`;
  if (!data) return html`<p class="muted">Loading…</p>`;
  const reg = data.registry;
  const [kind, name] = path;
  if (kind && name) return html`<section class="page" data-page-body="registry"><${Detail} kind=${kind} name=${name} reg=${reg} /></section>`;
  const shown = KINDS.filter(([k]) => !kind || k === kind);
  return html`<section class="page" data-page-body="registry">
    <h1>Registry</h1>
    <p class="sub">Version ${reg.version} (${reg.fingerprint}), applied ${time(reg.applied_at)}.
      <a href="#/history">History</a> · <a href="#/lineage">lineage</a></p>
    <p class="kinds">${KINDS.map(([k, label]) => html`<a class=${kind === k ? 'active' : ''} href=${`#/registry/${k}`}>${label}</a> `)}</p>
    ${shown.map(([k, label, key]) => html`<h2>${label}</h2>
      <ul class="objects">${reg[key].map((o) => html`<li data-object=${`${k}:${o.name}`}>
        <a href=${link(k, o.name)}>${o.name}</a> <span class="muted"><${Summary} kind=${k} obj=${o} /></span>
        ${o.description && html`<div class="desc">${o.description}</div>`}</li>`)}</ul>`)}
  </section>`;
}

// Every object and feature whose name, description, tag, owner or type holds `query`.
export function Search({ query, onPick }) {
  const { data, error } = useApi('/api/registry');
  if (error) return html`<${Problem} error=${error} />`;
  if (!data) return html`<p class="muted">Loading…</p>`;
  const reg = data.registry;
  const q = query.toLowerCase();
  const hit = (...texts) => texts.some((t) => t && String(t).toLowerCase().includes(q));
  const results = [];
  for (const [kind, label, key] of KINDS) {
    for (const o of reg[key]) {
      if (hit(o.name, o.description, o.owner, o.tags && JSON.stringify(o.tags))) {
        results.push({ id: `${kind}:${o.name}`, label: label.replace(/s$/, '').toLowerCase(), name: o.name, href: link(kind, o.name), text: o.description });
      }
    }
  }
  for (const v of reg.feature_views) {
    for (const f of v.schema) {
      if (hit(f.name, f.description, f.type)) {
        results.push({ id: `feature:${v.name}:${f.name}`, label: 'feature', name: `${v.name}:${f.name}`, href: link('feature_view', v.name), text: `${f.type}${f.description ? ` · ${f.description}` : ''}` });
      }
    }
  }
  return html`<section class="page" data-page-body="search">
    <h1>Search: “${query}”</h1>
    <p class="sub">${results.length} result${results.length === 1 ? '' : 's'}</p>
    <ul class="objects search-results">${results.map((r) => html`<li data-result=${r.id}>
      <span class="kind">${r.label}</span> <a href=${r.href} onClick=${onPick}>${r.name}</a>
      ${r.text && html` <span class="muted">${r.text}</span>`}</li>`)}</ul>
  </section>`;
}
