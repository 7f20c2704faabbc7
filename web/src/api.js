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
  return body;
}
