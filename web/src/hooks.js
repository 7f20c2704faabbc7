// Shared by the pages: loading an API answer, showing a problem.
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { getJson, Unauthorized } from './api.js';

const html = htm.bind(h);

// Loads `path` and re-renders with {data, error}; `reload` loads it again.
export function useApi(path) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    if (!path) return undefined;
    setState((s) => ({ ...s, loading: true }));
    getJson(path).then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => {
        if (error instanceof Unauthorized) window.dispatchEvent(new Event('granary-unauthorized'));
        if (live) setState({ data: null, error, loading: false });
      },
    );
    return () => {
      live = false;
    };
  }, [path, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function Problem({ error }) {
  return html`<div class="problem" role="alert">${String(error.message || error)}</div>`;
}

