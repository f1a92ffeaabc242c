// The page's state. It lives in the URL, so that a view can be bookmarked,
// shared and reloaded; this module is the one place that holds it.

const LIVE_WINDOW_MS = 15 * 60_000;
const MODES = ["catchment", "latency", "diff"];

export const state = {
  target: "", res: "3", mode: "catchment", metric: "p50", probes: false,
  from: "", to: "", // empty: live, the last 15 minutes
  a_from: "", a_to: "", // diff "before"; empty: the window just before
};

// readState takes the state from the address bar, dropping what a hand-edited
// or stale URL got wrong rather than asking the API for it.
export function readState() {
  const q = new URLSearchParams(location.search);
  for (const k of ["target", "res", "from", "to", "a_from", "a_to", "metric"]) {
    if (q.has(k)) state[k] = q.get(k);
  }
  if (MODES.includes(q.get("mode"))) state.mode = q.get("mode");
  if (!/^[1-7]$/.test(state.res)) state.res = "3";
  if (!["p50", "inflation"].includes(state.metric)) state.metric = "p50";
  state.probes = q.get("probes") === "1";
  if (!validTime(state.from) || !validTime(state.to)) state.from = state.to = "";
  if (!validTime(state.a_from) || !validTime(state.a_to)) state.a_from = state.a_to = "";
}

function validTime(s) { return s !== "" && !Number.isNaN(Date.parse(s)); }

// writeState puts the state in the address bar without a navigation; what
// the mode does not use stays out of the URL.
export function writeState() {
  const q = new URLSearchParams();
  if (state.target) q.set("target", state.target);
  q.set("res", state.res);
  q.set("mode", state.mode);
  if (state.from) { q.set("from", state.from); q.set("to", state.to); }
  if (state.mode === "diff" && state.a_from) { q.set("a_from", state.a_from); q.set("a_to", state.a_to); }
  if (state.mode === "latency") q.set("metric", state.metric);
  if (state.probes) q.set("probes", "1");
  history.replaceState(null, "", "?" + q.toString());
}

// windows returns the window on screen (b) and the diff's "before" (a).
export function windows() {
  let b;
  if (state.from) b = { from: new Date(state.from), to: new Date(state.to), live: false };
  else {
    const to = new Date();
    b = { from: new Date(to.getTime() - LIVE_WINDOW_MS), to, live: true };
  }
  let a;
  if (state.a_from) a = { from: new Date(state.a_from), to: new Date(state.a_to) };
  else a = { from: new Date(2 * b.from.getTime() - b.to.getTime()), to: b.from };
  return { a, b };
}
