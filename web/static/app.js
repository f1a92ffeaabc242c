// catchmap web UI: the catchment of one anycast target on a world map, its
// timeline, and what moved between two windows. This is the entry module:
// it reads the state, wires the parts together, and loads and draws the
// data on each change and every 10 s. Plain ES modules, no build step;
// Leaflet, uPlot and topojson-client are vendored globals (L, uPlot,
// topojson) that index.html loads first. Every request goes to this page's
// own origin, by relative URL, so the page also works behind a path prefix.

import { takeToken, apiURL, fetchJSON, lists, loadRegistry } from "./api.js";
import { assignColours, makeScale } from "./colours.js";
import { initControls, syncControls, loadTargets } from "./controls.js";
import { setStatus } from "./dom.js";
import { initDownloads, setDownloads } from "./downloads.js";
import { iso } from "./format.js";
import { renderLegend } from "./legend.js";
import { initMap, drawCells, drawSites, drawProbes } from "./map.js";
import { state, readState, writeState, windows } from "./state.js";
import { renderSummary, renderDiff, renderProbeTable } from "./tables.js";
import { initTimeline, timelineRange, renderTimeline, timelinePlot } from "./timeline.js";

const POLL_MS = 10_000;

// sameFeatures compares two catchment GeoJSONs by their features: the
// catchment member names the window, which moves on every live poll.
function sameFeatures(a, b) {
  return JSON.stringify(a.features) === JSON.stringify(b.features);
}

let gen = 0, inflight = null, renders = 0;

// refresh loads the state's data and draws it; a newer refresh aborts and
// supersedes an older one. poll says it is a timed reload of the same view.
async function refresh(poll) {
  if (!state.target) return;
  const my = ++gen;
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const signal = inflight.signal;
  const w = windows();
  const common = { target: state.target, res: state.res };
  const win = { from: iso(w.b.from), to: iso(w.b.to) };
  const range = timelineRange(w);
  setDownloads(w);
  try {
    // One request for the catchment: the GeoJSON carries the rest of its
    // JSON answer (sites, totals, flips, location suspects) as the foreign
    // member "catchment", so the aggregator computes the window once.
    const reqs = [
      fetchJSON("geojson", apiURL("catchment", { ...common, ...win, by: "h3", format: "geojson" }), signal, poll, sameFeatures),
      state.mode === "diff"
        ? fetchJSON("diff", apiURL("diff", { ...common, a_from: iso(w.a.from), a_to: iso(w.a.to), b_from: win.from, b_to: win.to }), signal)
        : null,
    ];
    const side = [
      fetchJSON("timeline", apiURL("timeline", { target: state.target, from: iso(range.from), to: iso(range.to), step: range.step + "s" }), signal),
      fetchJSON("annotations", apiURL("annotations", { target: state.target, from: iso(range.from), to: iso(range.to) }), signal),
    ];
    const reg = loadRegistry(); // never rejects
    const sideAll = Promise.all(side);
    sideAll.catch(() => {}); // observed below, unless this refresh is superseded first
    const [gj, d] = await Promise.all(reqs);
    if (my !== gen) return;
    performance.mark("catchmap:data");
    lists(gj.data, "features");
    const c = gj.data.catchment;
    if (!c) throw new Error("api/v1/catchment: the GeoJSON lacks its \"catchment\" member: is the aggregator older than this page?");
    lists(c, "sites", "location_suspects", "flips");
    if (d) lists(d.data, "cells_changed", "cells", "sites", "flows");
    // The cells are redrawn only when their GeoJSON or the diff changed.
    render(gj.data, c, d && d.data, w, !poll || !gj.same || (d && !d.same));
    // Let the map paint before the timeline and the probe table are built.
    await new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 0)));
    const [tl, notes] = await sideAll;
    if (my !== gen) return;
    lists(tl.data, "steps", "shifts");
    for (const st of tl.data.steps) st.shares ||= {};
    renderTimeline(tl.data, notes.data || [], w, range);
    const names = await reg;
    if (my !== gen) return;
    renderProbeTable(gj.data.features.filter((f) => f.properties.kind === "probe"), c.location_suspects, names);
    setStatus("");
  } catch (e) {
    if (e.name === "AbortError" || my !== gen) return;
    setStatus("Could not load data: " + e.message);
  }
}

// render draws the catchment GeoJSON gj (c its catchment member) and the
// diff d (null outside diff mode) of the windows w; the cells only when
// redraw is set, since drawing them is what costs.
function render(gj, c, d, w, redraw) {
  const cells = [], probes = [];
  for (const f of gj.features) {
    if (f.properties.kind === "cell") cells.push(f);
    else if (f.properties.kind === "probe") probes.push(f);
  }
  assignColours(c.sites.map((s) => s.site).concat(d ? d.sites.map((s) => s.site) : []));
  const ctx = { mode: state.mode, metric: state.metric };
  if (state.mode === "latency") {
    ctx.scale = makeScale(cells.map((f) => (state.metric === "inflation" ? f.properties.inflation_ms : f.properties.rtt_p50_ms)));
  }
  if (d) {
    ctx.changed = new Set(d.cells_changed.map((x) => x.cell));
    ctx.diffCells = new Map(d.cells.map((x) => [x.cell, x]));
  }
  if (redraw) {
    drawCells(cells, ctx);
    performance.mark("catchmap:cells-added");
    // The mark after the next frame is when the cells are on screen.
    requestAnimationFrame(() => setTimeout(() => performance.mark("catchmap:cells-drawn"), 0));
    drawProbes(probes);
  }
  drawSites(c.sites);
  const names = new Map(c.sites.map((s) => [s.site, s.name]));
  renderLegend(d ? d.sites.map((s) => ({ ...s, name: names.get(s.site) })) : c.sites, ctx);
  renderSummary(c, w.b);
  renderDiff(d, w);
  renders++;
  document.body.dataset.renders = String(renders);
  document.body.dataset.cells = String(cells.length);
}

// changed is called after the user changed the state.
function changed() {
  writeState();
  syncControls();
  refresh(false);
}

async function main() {
  takeToken();
  readState();
  const map = initMap();
  window.catchmap = { map, get plot() { return timelinePlot(); } }; // for the console and the browser tests
  initControls(changed);
  initDownloads();
  initTimeline((from, to) => {
    state.from = iso(from);
    state.to = iso(to);
    changed();
  });
  // With ?target= the map need not wait for the plan.
  const targets = loadTargets().catch((e) => setStatus("Could not load the targets: " + e.message));
  if (!state.target) await targets;
  writeState();
  syncControls();
  await Promise.all([refresh(false), targets.then(syncControls)]);
  setInterval(() => { if (!document.hidden) refresh(true); }, POLL_MS);
}

main();
