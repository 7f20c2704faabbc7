// The registry's versions, newest first, with what each `granary apply` changed.
import { h } from 'preact';
import htm from 'htm';
import { useApi, Problem } from '../hooks.js';
import { time } from '../format.js';

const html = htm.bind(h);
const SIGN = { add: '+', update: '~', remove: '−' };

export function History() {
  const { data, error } = useApi('/api/history');
  if (error) return html`<${Problem} error=${error} />`;
  if (!data) return html`<p class="muted">Loading…</p>`;
  return html`<section class="page" data-page-body="history">
    <h1>Registry history</h1>
    <p class="sub">${data.versions.length} version${data.versions.length === 1 ? '' : 's'}; each <code>granary apply</code> that changed the definitions made one.</p>
    ${data.versions.map((v) => html`<div class="version" data-version=${v.version}>
      <h2>Version ${v.version} <span class="muted">${time(v.applied_at)} · ${v.fingerprint}</span></h2>
      ${v.changes.length === 0 ? html`<p class="muted">no change</p>` : html`<ul class="changes">
        ${v.changes.map((c) => html`<li class=${`change ${c.action}`}><code>${SIGN[c.action]}</code> ${c.kind} <b>${c.name}</b>
          ${c.changed_keys.length > 0 && html` <span class="muted">(${c.changed_keys.join(', ')})</span>`}</li>`)}
      </ul>`}
    </div>`)}
  </section>`;
}
