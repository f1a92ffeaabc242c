// How the page writes values: HTML-escaped text, units, and times in UTC.

export function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
export const pct = (v) => (v == null ? "—" : (v * 100).toFixed(1) + "%");
export const ms = (v) => (v == null ? "—" : v.toFixed(1));
export const km = (v) => (v == null ? "—" : Math.round(v) + " km");
// iso is how times go into API requests and the URL.
export const iso = (d) => d.toISOString();
export const n = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;

export function fmtTime(d) {
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}
