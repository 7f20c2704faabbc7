// Granary's web console: a single page over the read-only JSON API of `granary ui`.
// Routes are in the URL's hash (#/freshness, #/registry/feature_view/customer_risk, ...).
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { setToken } from './api.js';
import { Overview } from './pages/overview.js';
import { Registry, Search } from './pages/registry.js';
import { Lineage } from './pages/lineage.js';
import { History } from './pages/history.js';
import { Freshness } from './pages/freshness.js';
import { Serving } from './pages/serving.js';
import { Data } from './pages/data.js';
import './style.css';

const html = htm.bind(h);

const PAGES = [
  ['overview', 'Overview'],
  ['registry', 'Registry'],
  ['lineage', 'Lineage'],
  ['history', 'History'],
  ['freshness', 'Freshness'],
  ['serving', 'Serving'],
  ['data', 'Data'],
];

function currentRoute() {
  const parts = (window.location.hash.replace(/^#\/?/, '') || 'overview').split('/');
  return parts.map((p) => decodeURIComponent(p));
}

function TokenForm({ onSaved }) {
  const [value, setValue] = useState('');
  const save = (e) => {
    e.preventDefault();
    setToken(value.trim());
    onSaved();
  };
  return html`<form class="token" onSubmit=${save}>
    <h2>This console requires a bearer token</h2>
    <p>Enter the token <code>granary ui</code> was started with (--token or GRANARY_UI_TOKEN).</p>
    <input type="password" name="token" autocomplete="off" value=${value}
           onInput=${(e) => setValue(e.target.value)} placeholder="token" />
    <button type="submit">Open the console</button>
  </form>`;
}

function App() {
  const [route, setRoute] = useState(currentRoute());
  const [needToken, setNeedToken] = useState(false);
  const [generation, setGeneration] = useState(0);
  const [query, setQuery] = useState('');
  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    const onUnauthorized = () => setNeedToken(true);
    window.addEventListener('hashchange', onHash);
    window.addEventListener('granary-unauthorized', onUnauthorized);
    return () => {
      window.removeEventListener('hashchange', onHash);
      window.removeEventListener('granary-unauthorized', onUnauthorized);
    };
  }, []);
  const [page, ...rest] = route;
  let body;
  if (needToken) {
    body = html`<${TokenForm} onSaved=${() => { setNeedToken(false); setGeneration((g) => g + 1); }} />`;
  } else if (query.trim()) {
    body = html`<${Search} query=${query.trim()} onPick=${() => setQuery('')} />`;
  } else if (page === 'registry') body = html`<${Registry} path=${rest} />`;
  else if (page === 'lineage') body = html`<${Lineage} />`;
  else if (page === 'history') body = html`<${History} />`;
  else if (page === 'freshness') body = html`<${Freshness} focus=${rest[0]} />`;
  else if (page === 'serving') body = html`<${Serving} />`;
  else if (page === 'data') body = html`<${Data} view=${rest[0]} />`;
  else body = html`<${Overview} />`;
  return html`<div class="shell">
    <header>
      <a class="brand" href="#/overview">Granary</a>
      <nav>
        ${PAGES.map(([id, label]) => html`<a href=${`#/${id}`} data-page=${id}
            class=${page === id || (id === 'overview' && !PAGES.some(([p]) => p === page)) ? 'active' : ''}>${label}</a>`)}
      </nav>
      <input class="search" type="search" placeholder="Search features, views, sources…"
             aria-label="Search the registry" value=${query}
             onInput=${(e) => setQuery(e.target.value)} />
    </header>
    <main key=${generation}>${body}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
