// The Leaflet map: the basemap, the cells coloured by site or latency, the
// sites, the probes, and the box telling what a cell holds.

import { addBasemap } from "./basemap.js";
import { CellCanvas, MIN_CELL_PX } from "./cellcanvas.js";
import { siteColour, swatch, paintSwatches } from "./colours.js";
import { $ } from "./dom.js";
import { esc, pct, ms, km, n } from "./format.js";
import { state } from "./state.js";

// The approximate width in km of an H3 cell at each resolution (twice the
// mean edge length), to size cell outlines by how large cells look.
const CELL_KM = [2562, 966, 366, 138, 52, 20, 7.4, 2.8];

// Up to SVG_MAX cells are SVG paths, each in the DOM with data attributes
// naming its cell and site. Beyond, CellCanvas draws them all on one canvas.
const SVG_MAX = 2000;

let map, cellLayer, siteLayer, probeLayer;
let pinned = null;
let cellCtx = null; // the style context of the cells on the map
let fitted = ""; // the target the view was last fitted to: later polls keep the user's view

// initMap builds the map in #map and returns it.
export function initMap() {
  map = L.map("map", { worldCopyJump: true, minZoom: 1, maxZoom: 9, zoomSnap: 0.5 }).setView([25, 10], 2);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  map.attributionControl.addAttribution("Basemap: Natural Earth (public domain), via world-atlas");
  map.createPane("basemap").style.zIndex = 250;
  map.createPane("sites").style.zIndex = 450;
  map.createPane("probes").style.zIndex = 440;

  const info = L.control({ position: "topright" });
  info.onAdd = () => {
    const d = L.DomUtil.create("div", "info");
    d.id = "info";
    L.DomEvent.disableClickPropagation(d);
    return d;
  };
  info.addTo(map);
  map.on("click", () => { pinned = null; $("#info").innerHTML = ""; });
  // Outlines keep cells visible whatever the zoom. The canvas redraws on
  // the moveend that follows, with the new weight; SVG paths are restyled.
  map.on("zoomend", () => {
    if (!cellCtx) return;
    const w = cellWeight();
    if (w === cellCtx.weight) return;
    cellCtx.weight = w;
    if (cellLayer && cellLayer.setStyle) cellLayer.setStyle((f) => cellStyle(f.properties, cellCtx));
  });

  addBasemap(map);
  return map;
}

// cellWeight is the outline width that makes cells of the shown resolution
// at least MIN_CELL_PX wide at the map's zoom (at the equator; cells look
// larger towards the poles).
function cellWeight() {
  const px = (CELL_KM[+state.res] || CELL_KM[3]) * (256 * 2 ** map.getZoom()) / 40075;
  return Math.max(1, Math.min(3.5, MIN_CELL_PX - px));
}

// cellStyle outlines each cell in its own colour, so that small cells stay
// visible, and solid enough to read when the cell's site is certain; a
// low-confidence cell stays faint. ctx.weight comes from cellWeight.
function cellStyle(p, ctx) {
  const low = p.confidence === "low";
  const s = { weight: ctx.weight, opacity: low ? 0.75 : 0.9, fillOpacity: low ? 0.25 : 0.8 };
  if (ctx.mode === "latency") {
    s.fillColor = ctx.scale(ctx.metric === "inflation" ? p.inflation_ms : p.rtt_p50_ms);
  } else {
    s.fillColor = siteColour(p.site);
  }
  s.color = s.fillColor;
  if (ctx.changed && ctx.changed.has(p.cell)) {
    s.color = "#111"; s.weight = ctx.weight + 2; s.opacity = 1;
  }
  return s;
}

// drawCells replaces the cells on the map. ctx holds what their style
// depends on: mode, metric, the latency scale, and in diff mode the cells
// that changed site (changed) and the diff's cells by id (diffCells).
export function drawCells(cells, ctx) {
  if (cellLayer) cellLayer.remove();
  // Changed cells go last, so that their outlines are drawn over their
  // neighbours' rather than under them.
  if (ctx.changed && ctx.changed.size) {
    cells = cells.filter((f) => !ctx.changed.has(f.properties.cell))
      .concat(cells.filter((f) => ctx.changed.has(f.properties.cell)));
  }
  const hover = (p) => { if (!pinned) showInfo(p, ctx); };
  const click = (p) => { pinned = p.cell; showInfo(p, ctx); };
  const svg = cells.length <= SVG_MAX;
  ctx.weight = cellWeight();
  cellCtx = ctx;
  if (svg) {
    cellLayer = L.geoJSON({ type: "FeatureCollection", features: cells }, {
      className: "cell", style: (f) => cellStyle(f.properties, ctx),
    });
    cellLayer.on("mouseover", (e) => hover(e.layer.feature.properties));
    cellLayer.on("click", (e) => { L.DomEvent.stopPropagation(e); click(e.layer.feature.properties); });
  } else {
    cellLayer = new CellCanvas(cells, (p) => cellStyle(p, ctx), hover, click);
  }
  // Fit the view before adding the cells: moving the map afterwards would
  // draw them all again. Data spread over the world gets the world view,
  // centred on the data's latitudes rather than on the empty polar seas.
  if (fitted !== state.target && cells.length) {
    fitted = state.target;
    const b = cellLayer.getBounds();
    const z = Math.max(2, Math.min(6, map.getBoundsZoom(b, false, L.point(30, 30))));
    const c = b.getCenter();
    map.setView(z > 2 ? c : [Math.max(-20, Math.min(35, c.lat)), 10], z, { animate: false });
  }
  if (cellWeight() !== ctx.weight) {
    ctx.weight = cellWeight();
    if (svg) cellLayer.setStyle((f) => cellStyle(f.properties, ctx)); // the canvas reads it when it draws
  }
  cellLayer.addTo(map);
  if (!svg) return;
  // Data attributes let tests and user styles find cells by what they show.
  cellLayer.eachLayer((l) => {
    const p = l.feature.properties, el = l.getElement();
    if (!el) return;
    el.dataset.cell = p.cell;
    el.dataset.site = p.site || "";
    el.dataset.confidence = p.confidence || "";
    if (ctx.changed && ctx.changed.has(p.cell)) el.classList.add("changed");
  });
}

function showInfo(p, ctx) {
  const shares = Object.entries(p.shares || {}).sort((x, y) => y[1] - x[1]);
  let rows = shares.map(([s, v]) =>
    `<tr><td>${swatch(s)}${esc(s)}</td><td class="num">${pct(v)}</td>` +
    `<td class="num">${n((p.sites || {})[s] ?? 0, "probe")}</td></tr>`).join("");
  let diff = "";
  if (ctx.diffCells && ctx.diffCells.has(p.cell)) {
    const d = ctx.diffCells.get(p.cell);
    diff = `<div>Before → after: <b>${esc(d.site_a || "—")} → ${esc(d.site_b || "—")}</b></div>`;
  }
  const el = $("#info");
  el.innerHTML = `<div><b>${esc(p.cell)}</b> ${p.confidence === "low" ? "(low confidence)" : ""}</div>${diff}` +
    `<table>${rows}</table>` +
    `<div>${n(p.probes, "probe")}, ${n(p.results, "result")}, ${pct(p.error_share)} errors</div>` +
    `<div>RTT p50 ${ms(p.rtt_p50_ms)} ms, p90 ${ms(p.rtt_p90_ms)} ms</div>` +
    `<div>Site ${esc(p.site || "—")} at ${km(p.site_distance_km)}; nearest ${esc(p.nearest_site || "—")} at ${km(p.nearest_distance_km)}</div>` +
    `<div>Inflation ${ms(p.inflation_ms)} ms; not nearest ${pct(p.not_nearest_share)}</div>`;
  paintSwatches(el);
}

// drawSites replaces the site markers: the catchment's sites that have a place.
export function drawSites(sites) {
  if (siteLayer) siteLayer.remove();
  siteLayer = L.layerGroup().addTo(map);
  for (const s of sites) {
    if (s.lat == null || s.lon == null) continue;
    const m = L.circleMarker([s.lat, s.lon], {
      pane: "sites", radius: 6, color: "#111", weight: 1.5, fillColor: siteColour(s.site), fillOpacity: 1,
      className: "site-marker",
    });
    m.bindTooltip(`${esc(s.site)}${s.name ? " — " + esc(s.name) : ""}`, { direction: "right" });
    siteLayer.addLayer(m);
    m.getElement().dataset.site = s.site;
  }
}

// drawProbes replaces the probe dots, shown only when state.probes is set.
export function drawProbes(probes) {
  if (probeLayer) probeLayer.remove();
  probeLayer = null;
  if (!state.probes) return;
  probeLayer = L.layerGroup();
  for (const f of probes) {
    const [lon, lat] = f.geometry.coordinates;
    const p = f.properties;
    const m = L.circleMarker([lat, lon], {
      pane: "probes", radius: 3, color: "#222", weight: 0.8, fillColor: siteColour(p.site), fillOpacity: 1,
      className: "probe-dot",
    });
    m.bindTooltip(`${esc(p.probe)}: ${esc(p.site || "unserved")}${p.rtt_ms != null ? ", " + ms(p.rtt_ms) + " ms" : ""}`);
    probeLayer.addLayer(m);
  }
  probeLayer.addTo(map);
}
