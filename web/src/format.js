// Numbers, durations and times as people read them.
export function age(seconds) {
  if (seconds === null || seconds === undefined) return 'never';
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  if (s < 48 * 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  }
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

export function num(v, digits = 4) {
  if (v === null || v === undefined) return '–';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e9 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

export function pct(v) {
  if (v === null || v === undefined) return '–';
  return `${(v * 100).toFixed(v > 0 && v < 0.001 ? 3 : 1)}%`;
}

export function ms(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  return `${(seconds * 1000).toFixed(seconds < 0.001 ? 3 : 2)} ms`;
}

export function time(iso) {
  if (!iso) return '–';
  return iso.replace('T', ' ').replace('Z', ' UTC');
}

export function epoch(iso) {
  return Date.parse(iso) / 1000;
}
