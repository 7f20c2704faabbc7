// The lineage graph: entities and data sources feed feature views, which feed feature services.
// Laid out in columns by kind, drawn as SVG (no graph library needed for four columns).
import { h } from 'preact';
import htm from 'htm';
import { useApi, Problem } from '../hooks.js';
import { link } from './registry.js';

const html = htm.bind(h);
const COLUMNS = ['entity', 'data_source', 'feature_view', 'feature_service'];
const TITLES = { entity: 'Entities', data_source: 'Data sources', feature_view: 'Feature views', feature_service: 'Feature services' };
const W = 210;
const GAP = 70;
const ROW = 44;

export function Lineage() {
  const { data, error } = useApi('/api/registry');
  if (error) return html`<${Problem} error=${error} />`;
  if (!data) return html`<p class="muted">Loading…</p>`;
  const { nodes, edges } = data.lineage;
  const pos = {};
  let rows = 0;
  COLUMNS.forEach((kind, c) => {
    const column = nodes.filter((n) => n.kind === kind);
    column.forEach((n, r) => {
      pos[n.id] = { x: 10 + c * (W + GAP), y: 40 + r * ROW, node: n };
    });
    rows = Math.max(rows, column.length);
  });
  const width = 20 + COLUMNS.length * W + (COLUMNS.length - 1) * GAP;
  const height = 60 + rows * ROW;
  return html`<section class="page" data-page-body="lineage">
    <h1>Lineage</h1>
    <p class="sub">Where each feature view's data comes from and which services serve it. Click a box for its details.</p>
    <svg class="lineage" viewBox=${`0 0 ${width} ${height}`} width=${width} height=${height} role="img" aria-label="lineage graph">
      ${COLUMNS.map((kind, c) => html`<text class="column-title" x=${10 + c * (W + GAP)} y="20">${TITLES[kind]}</text>`)}
      ${edges.map((e) => {
        const a = pos[e.from];
        const b = pos[e.to];
        if (!a || !b) return null;
        const x1 = a.x + W;
        const y1 = a.y + 15;
        const x2 = b.x;
        const y2 = b.y + 15;
        const mid = (x1 + x2) / 2;
        return html`<path class="edge" data-edge=${`${e.from}->${e.to}`} d=${`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`} />`;
      })}
      ${Object.values(pos).map(({ x, y, node }) => html`<a href=${link(node.kind, node.name)}>
        <g class=${`node ${node.kind}`} data-node=${node.id}>
          <rect x=${x} y=${y} width=${W} height="30" rx="6" />
          <text x=${x + 10} y=${y + 20}>${node.name}</text>
        </g></a>`)}
    </svg>
  </section>`;
}
