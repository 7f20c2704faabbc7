// The console's JSON API (docs/CONSOLE.md). A bearer token, when `granary ui --token` asks for
// one, is kept in this tab's sessionStorage and sent with every request.
const TOKEN_KEY = 'granary-console-token';

export class Unauthorized extends Error {}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export async function getJson(path) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const response = await fetch(path, { headers });
  if (response.status === 401) throw new Unauthorized('this console requires a bearer token');
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${path}: answered ${response.status} with something that is not JSON`);
  }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `answered ${response.status}`;
    throw new Error(message);
  }
  return path.startsWith('/api/registry') ? normalizeRegistry(body) : body;
}

// The registry's definitions as the pages read them. The server prints each object the way the
// canonical YAML does (registry/document.h): an entity's `value_type` is one type or a list, and a
// service names a whole view as a plain string. The pages take `value_types` (always a list) and
// projections as {view, features} (features null: every feature of the view), and a view's
// `schema` lists its window aggregations too.
export function normalizeRegistry(body) {
  const visit = (o) => {
    if (!o || typeof o !== 'object' || Array.isArray(o)) return;
    if (Array.isArray(o.feature_services)) {
      for (const s of o.feature_services) {
        s.features = (s.features || []).map((p) => (typeof p === 'string' ? { view: p, features: null } : p));
      }
    }
    if (Array.isArray(o.entities)) {
      for (const e of o.entities) {
        if (!Array.isArray(e.value_types)) {
          e.value_types = Array.isArray(e.value_type) ? e.value_type : e.value_type ? [e.value_type] : [];
        }
      }
    }
    if (Array.isArray(o.feature_views)) {
      // A view's features: its schema, then its window aggregations (docs/AGGREGATIONS.md).
      for (const v of o.feature_views) {
        const aggregations = (v.aggregations || []).map((a) => ({
          name: a.name,
          type: a.type || '',
          description: a.description || `${a.function}${a.column ? ` of ${a.column}` : ''}` +
            `${a.where ? ` where ${a.where}` : ''} over ${a.window}`,
        }));
        v.schema = (v.schema || []).concat(aggregations);
      }
    }
    for (const v of Object.values(o)) visit(v);
  };
  visit(body);
  return body;
}
