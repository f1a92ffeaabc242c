// catchmap web UI: the catchment of one anycast target on a world map, its
// timeline, and what moved between two windows. Plain ES module, no build
// step; Leaflet, uPlot and topojson-client are vendored globals (L, uPlot,
// topojson). Every request goes to this page's own origin, by relative URL,
// so the page also works behind a path prefix.

const POLL_MS = 10_000;
// The probe registry (names, last seen) changes slowly: read at most this often.
const REGISTRY_MS = 30_000;
const LIVE_WINDOW_MS = 15 * 60_000;
const MAX_PROBE_ROWS = 1000;

// PALETTE is fixed and a site's colour comes from a hash of its code, so a
// site keeps its colour across targets, reloads and releases. Two sites on
// screen whose hashes collide would look alike, so the later code (in sort
// order) takes the next free colour instead: see assignColours.
const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
  "#9edae5", "#dbdb8d", "#393b79", "#637939",
];
const UNSERVED = "#9e9e9e";
// Sequential scale for latency, low (good) to high: blue to dark red, with
// no step so pale that it vanishes on the basemap's land or sea, and blue
// against orange and red for readers who cannot tell red from green.
const SCALE = ["#2c7fb8", "#41b6c4", "#e0b400", "#f08c00", "#d7301f", "#7f0000"];

const utf8 = new TextEncoder();

// hashSlot is the site's palette index: 32-bit FNV-1a of its UTF-8 bytes.
function hashSlot(site) {
  let h = 0x811c9dc5;
  for (const b of utf8.encode(site)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % PALETTE.length;
}

let colours = new Map();

// assignColours gives each of the sites on screen its hash colour, or on a
// collision the next free one, visiting codes in sort order so the result
// depends only on the set of sites.
function assignColours(codes) {
  const used = new Set();
  colours = new Map();
  for (const c of [...new Set(codes)].filter(Boolean).sort()) {
    let i = hashSlot(c);
    for (let k = 0; k < PALETTE.length && used.has(i); k++) i = (i + 1) % PALETTE.length;
    used.add(i);
    colours.set(c, PALETTE[i]);
  }
}

function siteColour(site) {
  if (!site) return UNSERVED;
  return colours.get(site) || PALETTE[hashSlot(site)];
}

// ---- state, kept in the URL ----

const MODES = ["catchment", "latency", "diff"];
const state = {
  target: "", res: "3", mode: "catchment", metric: "p50", probes: false,
  from: "", to: "", // empty: live, the last 15 minutes
  a_from: "", a_to: "", // diff "before"; empty: the window just before
};

function readState() {
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

function writeState() {
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
function windows() {
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

// ---- helpers ----

const $ = (s) => document.querySelector(s);

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
const pct = (v) => (v == null ? "—" : (v * 100).toFixed(1) + "%");
const ms = (v) => (v == null ? "—" : v.toFixed(1));
const km = (v) => (v == null ? "—" : Math.round(v) + " km");
const iso = (d) => d.toISOString();
const n = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;

function fmtTime(d) {
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// ---- read token ----

// An aggregator with a read token answers its API only to requests that
// carry it. The token arrives once in the URL fragment (#token=...), which
// browsers never send to servers, and is kept in sessionStorage for this tab
// only: it leaves the address bar (and so bookmarks, screenshots and shared
// links) at once, and every API request sends it as a bearer token.
const TOKEN_KEY = "catchmap.token";
let token = "";

// takeToken reads the token from the fragment, or else from this tab's
// storage, and strips it from the address bar. The fragment is split by
// hand: URLSearchParams would read a "+" (common in base64 tokens, pasted
// as they are) as a space.
function takeToken() {
  try { token = sessionStorage.getItem(TOKEN_KEY) || ""; } catch { /* storage off */ }
  const parts = location.hash.slice(1).split("&");
  const i = parts.findIndex((p) => p.startsWith("token="));
  if (i < 0) return;
  token = parts[i].slice("token=".length);
  try { token = decodeURIComponent(token); } catch { /* not percent-encoded: as pasted */ }
  token = token.trim();
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY); // #token= forgets it
  } catch { /* storage off: the token lasts until the page is left */ }
  parts.splice(i, 1);
  const rest = parts.filter(Boolean).join("&");
  history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
}

function authHeaders(h) {
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

// apiError is the message for a failed API answer: the API's own words (its
// 4xx/5xx bodies are {"error": "..."}), and for a 401 how to give the token.
function apiError(u, status, body) {
  let msg = body.trim();
  try { msg = JSON.parse(body).error || msg; } catch { /* not JSON: keep the text */ }
  if (status === 401) {
    msg += token
      ? " (the read token this tab holds was refused: open the page again as …/#token=READ_TOKEN with the right one)"
      : " (this aggregator needs its read token: open the page as …/#token=READ_TOKEN)";
  }
  return new Error(`${u.split("?")[0]}: ${status} ${msg}`);
}

function url(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v != null) q.set(k, v);
  return "api/v1/" + path + "?" + q.toString();
}

// fetchText returns the body, or throws apiError's Error.
async function fetchText(u, signal) {
  const r = await fetch(u, { signal, headers: authHeaders({ Accept: "application/json" }) });
  const body = await r.text();
  if (!r.ok) throw apiError(u, r.status, body);
  return body;
}

// lists sets each named field that the API sent as null (Go's nil slice)
// to an empty list, so the rest of the code need not check.
function lists(o, ...keys) {
  if (o) for (const k of keys) o[k] ||= [];
  return o;
}

// Responses that did not change since the last poll are not drawn again:
// redrawing 10,000 cells every 10 s would make the page sluggish.
// sameOf(old, new) compares the parsed answers where comparing the text
// would not do; it is asked only on polls.
const last = new Map();
async function fetchJSON(key, u, signal, poll = false, sameOf = null) {
  const body = await fetchText(u, signal);
  const data = JSON.parse(body);
  const prev = last.get(key);
  const same = !!prev && (prev.body === body || (poll && !!sameOf && sameOf(prev.data, data)));
  last.set(key, { body, data });
  return { data, same };
}

// sameFeatures compares two catchment GeoJSONs by their features: the
// catchment member names the window, which moves on every live poll.
function sameFeatures(a, b) {
  return JSON.stringify(a.features) === JSON.stringify(b.features);
}

function setStatus(msg) { $("#status").textContent = msg; }

function paintSwatches(root) {
  for (const el of root.querySelectorAll("[data-colour]")) el.style.background = el.dataset.colour;
}

// ---- map ----

let map, cellLayer, siteLayer, probeLayer;
let pinned = null;

function initMap() {
  map = L.map("map", { worldCopyJump: true, minZoom: 1, maxZoom: 9, zoomSnap: 0.5 }).setView([25, 10], 2);
  window.catchmap = { map }; // for the console and the browser tests
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

  fetch("vendor/world-atlas/countries-110m.json")
    .then((r) => { if (!r.ok) throw new Error("basemap: " + r.status); return r.json(); })
    .then((topo) => {
      const countries = topojson.feature(topo, topo.objects.countries);
      for (const f of countries.features) f.geometry = unwrapGeometry(f.geometry);
      L.geoJSON(countries, {
        pane: "basemap", interactive: false,
        style: { color: "#b0a99f", weight: 0.6, fillColor: "#f4f1ea", fillOpacity: 1 },
      }).addTo(map);
    })
    .catch((e) => setStatus("Could not load the basemap: " + e.message));
}

// Natural Earth cuts Russia, Fiji and Antarctica at 180°: their rings jump
// from +180 to -180, which Leaflet would draw as lines across the world.
// Unwrapping makes each ring continuous (Chukotka sits at 190°E), and a ring
// that goes round a pole is closed over that pole.
function unwrapRing(r) {
  const out = [[r[0][0], r[0][1]]];
  for (let i = 1; i < r.length; i++) {
    const prev = out[i - 1][0];
    let lon = r[i][0];
    while (lon - prev > 180) lon -= 360;
    while (lon - prev < -180) lon += 360;
    out.push([lon, r[i][1]]);
  }
  const first = out[0], last = out[out.length - 1];
  if (Math.abs(last[0] - first[0]) > 180) {
    const pole = first[1] < 0 ? -90 : 90;
    out.push([last[0], pole], [first[0], pole], first);
  }
  return out;
}

function unwrapGeometry(g) {
  if (g && g.type === "Polygon") return { type: g.type, coordinates: g.coordinates.map(unwrapRing) };
  if (g && g.type === "MultiPolygon") return { type: g.type, coordinates: g.coordinates.map((p) => p.map(unwrapRing)) };
  return g;
}

// The approximate width in km of an H3 cell at each resolution (twice the
// mean edge length), to size cell outlines by how large cells look.
const CELL_KM = [2562, 966, 366, 138, 52, 20, 7.4, 2.8];
// MIN_CELL_PX is how wide a cell should at least look: a res-3 cell is 3 px
// at world zoom, too small to see without an outline in its own colour.
const MIN_CELL_PX = 5;

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
    const v = ctx.metric === "inflation" ? p.inflation_ms : p.rtt_p50_ms;
    s.fillColor = v == null ? UNSERVED : ctx.scale(v);
  } else {
    s.fillColor = siteColour(p.site);
  }
  s.color = s.fillColor;
  if (ctx.changed && ctx.changed.has(p.cell)) {
    s.color = "#111"; s.weight = ctx.weight + 2; s.opacity = 1;
  }
  return s;
}

// Up to SVG_MAX cells are SVG paths, each in the DOM with data attributes
// naming its cell and site. Beyond, CellCanvas draws them all on one canvas:
// 10,000 Leaflet layers take seconds to build, project and lay out, while
// one canvas draws them in a few hundred milliseconds.
const SVG_MAX = 2000;
let cellCtx = null; // the style context of the cells on the map
let fitted = ""; // the target the view was last fitted to: later polls keep the user's view

// mercator projects to Leaflet's zoom-0 pixels (EPSG:3857, 256 px world).
function mercator(lon, lat) {
  const φ = (Math.max(-85.0511287798, Math.min(85.0511287798, lat)) * Math.PI) / 180;
  return [((lon + 180) / 360) * 256, (0.5 - Math.log(Math.tan(Math.PI / 4 + φ / 2)) / (2 * Math.PI)) * 256];
}

// CellCanvas is a Leaflet layer drawing polygon features on one canvas,
// with hover and click found by testing the pointer against the polygons.
const CellCanvas = L.Layer.extend({
  initialize(features, style, onHover, onClick) {
    this._style = style;
    this._onHover = onHover;
    this._onClick = onClick;
    this._cells = [];
    let south = 90, west = 180, north = -90, east = -180;
    for (const f of features) {
      const g = f.geometry;
      const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
      const rings = [];
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const poly of polys) {
        for (const r of poly) {
          const pts = new Float64Array(r.length * 2);
          r.forEach(([lon, lat], i) => {
            const [x, y] = mercator(lon, lat);
            pts[2 * i] = x; pts[2 * i + 1] = y;
            x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
            south = Math.min(south, lat); north = Math.max(north, lat);
            west = Math.min(west, lon); east = Math.max(east, lon);
          });
          rings.push(pts);
        }
      }
      if (rings.length) this._cells.push({ p: f.properties, rings, box: [x0, y0, x1, y1] });
    }
    this._bounds = L.latLngBounds([south, west], [north, east]);
  },

  getBounds() { return this._bounds; },

  onAdd(map) {
    this._canvas = L.DomUtil.create("canvas", "cell-canvas leaflet-interactive");
    this._canvas.dataset.cells = String(this._cells.length);
    this.getPane().appendChild(this._canvas);
    this._draw();
  },

  onRemove() {
    this._canvas.remove();
    this._canvas = null;
  },

  getEvents() {
    return {
      zoomstart: () => { this._canvas.style.visibility = "hidden"; },
      moveend: this._draw, viewreset: this._draw, resize: this._draw,
      mousemove: this._move, click: this._click,
    };
  },

  _draw() {
    const map = this._map, size = map.getSize(), dpr = window.devicePixelRatio || 1;
    const c = this._canvas, topLeft = map.containerPointToLayerPoint([0, 0]);
    L.DomUtil.setPosition(c, topLeft);
    c.width = size.x * dpr; c.height = size.y * dpr;
    c.style.width = size.x + "px"; c.style.height = size.y + "px";
    c.style.visibility = "";
    const k = map.getZoomScale(map.getZoom(), 0), origin = map.getPixelOrigin();
    const ox = origin.x + topLeft.x, oy = origin.y + topLeft.y;
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.lineJoin = "miter"; // hexagon corners are wide: miters stay short, and are cheaper than round joins
    // A cell smaller on screen than MIN_CELL_PX is a square of that size
    // with a 1 px outline: it looks the same as its outlined hexagon, and
    // canvas rectangles cost far less to rasterize than paths with wide
    // round-joined strokes.
    const half = (MIN_CELL_PX - 1) / 2;
    for (const cell of this._cells) {
      const [x0, y0, x1, y1] = cell.box;
      if (x1 * k - ox < -half || x0 * k - ox > size.x + half || y1 * k - oy < -half || y0 * k - oy > size.y + half) continue;
      const st = this._style(cell.p);
      ctx.fillStyle = st.fillColor;
      ctx.strokeStyle = st.color;
      if ((x1 - x0) * k < MIN_CELL_PX && (y1 - y0) * k < MIN_CELL_PX) {
        const x = ((x0 + x1) / 2) * k - ox - half, y = ((y0 + y1) / 2) * k - oy - half;
        ctx.globalAlpha = st.fillOpacity;
        ctx.fillRect(x, y, 2 * half, 2 * half);
        ctx.globalAlpha = st.opacity;
        ctx.lineWidth = 1;
        ctx.strokeRect(x, y, 2 * half, 2 * half);
        continue;
      }
      ctx.beginPath();
      for (const r of cell.rings) {
        ctx.moveTo(r[0] * k - ox, r[1] * k - oy);
        for (let i = 2; i < r.length; i += 2) ctx.lineTo(r[i] * k - ox, r[i + 1] * k - oy);
        ctx.closePath();
      }
      ctx.globalAlpha = st.fillOpacity;
      ctx.fill("evenodd");
      ctx.globalAlpha = st.opacity;
      ctx.lineWidth = st.weight;
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
  },

  // cellAt returns the properties of the cell under a map position.
  cellAt(latlng) {
    const [x, y] = mercator(latlng.lng, latlng.lat);
    for (let j = this._cells.length - 1; j >= 0; j--) {
      const cell = this._cells[j], [x0, y0, x1, y1] = cell.box;
      if (x < x0 || x > x1 || y < y0 || y > y1) continue;
      let inside = false;
      for (const r of cell.rings) {
        for (let i = 0, m = r.length - 2; i < r.length; m = i, i += 2) {
          if ((r[i + 1] > y) !== (r[m + 1] > y) && x < ((r[m] - r[i]) * (y - r[i + 1])) / (r[m + 1] - r[i + 1]) + r[i]) inside = !inside;
        }
      }
      if (inside) return cell.p;
    }
    return null;
  },

  _move(e) {
    const p = this.cellAt(e.latlng);
    this._map.getContainer().style.cursor = p ? "pointer" : "";
    if (p) this._onHover(p);
  },

  _click(e) {
    const p = this.cellAt(e.latlng);
    if (p) this._onClick(p);
  },
});

function drawCells(cells, ctx) {
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
    `<tr><td><span class="swatch" data-colour="${siteColour(s)}"></span>${esc(s)}</td><td class="num">${pct(v)}</td>` +
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

function drawSites(sites) {
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

function drawProbes(probes) {
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

// ---- legend, summary, tables ----

function makeScale(values) {
  const v = values.filter((x) => x != null).sort((a, b) => a - b);
  const hi = v.length ? Math.max(1, v[Math.floor((v.length - 1) * 0.95)]) : 1;
  const f = (x) => SCALE[Math.min(SCALE.length - 1, Math.max(0, Math.floor((x / hi) * SCALE.length)))];
  f.max = hi;
  return f;
}

function renderLegend(sites, ctx) {
  const el = $("#legend");
  let html = "";
  if (ctx.mode === "latency") {
    const label = ctx.metric === "inflation" ? "Inflation over the fibre bound (ms)" : "RTT p50 (ms)";
    html += `<div id="scale"><div>${label}</div><div class="scale"></div>` +
      `<div class="scale-ticks"><span>0</span><span>${(ctx.scale.max / 2).toFixed(0)}</span><span>≥ ${ctx.scale.max.toFixed(0)}</span></div></div>`;
  }
  // Code and numbers first: they must stay in view. The name comes last,
  // shortened, and cut to the width left; its title holds the full name.
  html += '<table class="sites"><thead><tr><th>Site</th>';
  html += ctx.mode === "diff" ? '<th class="num">Before</th><th class="num">After</th>' : '<th class="num">Share</th><th class="num">Probes</th>';
  html += '<th class="name">Name</th></tr></thead><tbody>';
  for (const s of sites) {
    html += `<tr data-site="${esc(s.site)}" data-share="${s.share ?? s.share_b}"><td><span class="swatch" data-colour="${siteColour(s.site)}"></span>${esc(s.site)}</td>`;
    html += ctx.mode === "diff"
      ? `<td class="num">${pct(s.share_a)}</td><td class="num">${pct(s.share_b)}</td>`
      : `<td class="num">${pct(s.share)}</td><td class="num">${s.probes}</td>`;
    html += `<td class="name" title="${esc(s.name || "")}">${esc(shortName(s.name))}</td></tr>`;
  }
  html += "</tbody></table>";
  el.innerHTML = html;
  paintSwatches(el);
  const bar = el.querySelector(".scale");
  if (bar) bar.style.background = `linear-gradient(to right, ${SCALE.join(", ")})`;
}

// AIRPORT_WORDS are what most site names (airports, from the site table)
// add to their place: "Frankfurt am Main International Airport" is
// Frankfurt am Main. The site JSON has no city field.
const AIRPORT_WORDS = /\b(international|intl|airport|aeroporto|aéroport|aeropuerto|flughafen|regional|municipal|air\s*base|airfield)\b\.?/gi;

// shortName is a site's name without airport words and without what follows
// a " - " (Guarulhos - Governador Andre Franco Montoro...); the full name
// when nothing would be left.
function shortName(name) {
  const s = (name || "").split(/\s[-–\/]\s/)[0].replace(AIRPORT_WORDS, " ").replace(/\s+/g, " ").trim();
  return s || name || "";
}

function renderSummary(c, w) {
  $("#summary").innerHTML =
    `<div><b>${esc(c.target)}</b>, ${fmtTime(w.from)} – ${fmtTime(w.to)}${w.live ? " (live)" : ""}</div>` +
    `<div>${n(c.probes, "probe")}, ${n(c.results, "result")}, ${c.unlocated} unlocated</div>` +
    `<div>RTT p50 ${ms(c.rtt_p50_ms)} ms; not served by the nearest site: ${pct(c.not_nearest_share)}</div>` +
    (c.location_suspects?.length ? `<div class="flag">${c.location_suspects.length} probe(s) fail the location check</div>` : "");
}

// The probe registry, GET /api/v1/probes: names and last-seen times by
// probe id (result records name probes by id). Read at most every
// REGISTRY_MS, whatever the refreshes; a failure leaves the table with ids
// and says why under it, since the map itself is not affected.
const registry = { at: -Infinity, byId: new Map(), error: "", pending: null };

function loadRegistry() {
  if (registry.pending) return registry.pending;
  if (performance.now() - registry.at < REGISTRY_MS) return Promise.resolve(registry);
  registry.at = performance.now();
  registry.pending = fetchText("api/v1/probes")
    .then((body) => {
      registry.byId = new Map((JSON.parse(body) || []).map((p) => [p.id, p]));
      registry.error = "";
    })
    .catch((e) => { registry.error = e.message; })
    .then(() => { registry.pending = null; return registry; });
  return registry.pending;
}

// ago says how long before now t was, roughly.
function ago(t) {
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

// renderProbeTable lists the located probes that answered in the window
// (the catchment GeoJSON's probe features: place, ASN, cell, site, RTT),
// joined by id with the registry's names and last-seen times.
function renderProbeTable(windowProbes, suspects, reg) {
  const sus = new Map(suspects.map((s) => [s.probe, s]));
  const rows = windowProbes.map((f) => ({ f, r: reg.byId.get(f.properties.probe) }));
  const label = (x) => (x.r && x.r.name) || x.f.properties.probe;
  rows.sort((a, b) => label(a).localeCompare(label(b)) || a.f.properties.probe.localeCompare(b.f.properties.probe));
  const shown = rows.slice(0, MAX_PROBE_ROWS);
  let html = "";
  for (const x of shown) {
    const p = x.f.properties, r = x.r || {}, [lon, lat] = x.f.geometry.coordinates;
    const s = sus.get(p.probe);
    const check = s
      ? `<span class="flag" title="answered from ${esc(s.site)} in ${ms(s.min_rtt_ms)} ms, but light in fibre needs ${ms(s.bound_ms)} ms for ${km(s.distance_km)}">⚠ too fast for its place</span>`
      : "ok";
    const seen = r.last_seen
      ? `<time datetime="${esc(r.last_seen)}" title="${ago(Date.parse(r.last_seen))}">${fmtTime(new Date(r.last_seen))}</time>`
      : "—";
    const asn = p.asn || r.asn;
    html += `<tr data-probe="${esc(p.probe)}"${s ? ' data-suspect="1"' : ""}>` +
      `<td class="name" title="probe id ${esc(p.probe)}">${esc(label(x))}${r.revoked ? " (revoked)" : ""}</td>` +
      `<td>${esc([p.country || r.country, `${lat.toFixed(2)}, ${lon.toFixed(2)}`].filter(Boolean).join(" "))}</td>` +
      `<td>${asn ? "AS" + asn : "—"}</td><td>${seen}</td><td>${esc(p.cell || "—")}</td>` +
      `<td>${p.site ? `<span class="swatch" data-colour="${siteColour(p.site)}"></span>${esc(p.site)}` : "—"}</td>` +
      `<td class="num">${ms(p.rtt_ms)}</td><td>${check}</td></tr>`;
  }
  const body = $("#probes tbody");
  body.innerHTML = html;
  paintSwatches(body);
  const notes = [];
  if (rows.length > shown.length) notes.push(`Showing ${shown.length} of ${rows.length} probes.`);
  if (reg.error) notes.push(`Probe names and last-seen times are unavailable: ${reg.error}`);
  $("#probes-note").textContent = notes.join(" ");
}

function renderFlows(d, w) {
  $("#diff-windows").textContent = `Before ${fmtTime(w.a.from)} – ${fmtTime(w.a.to)}; after ${fmtTime(w.b.from)} – ${fmtTime(w.b.to)}`;
  $("#moved").textContent = `${d.moved_probes} of ${d.probes} probes moved (${pct(d.moved_share)} of the weight); ${d.cells_changed.length} cells changed site` +
    (d.cells_changed.length ? " (outlined in black on the map)." : ".");
  $("#flows").hidden = !d.flows.length; // a header over nothing reads as a fault
  const body = $("#flows tbody");
  body.innerHTML = d.flows.map((f) =>
    `<tr><td><span class="swatch" data-colour="${siteColour(f.from)}"></span>${esc(f.from || "unserved")}</td>` +
    `<td><span class="swatch" data-colour="${siteColour(f.to)}"></span>${esc(f.to || "unserved")}</td><td class="num">${f.probes}</td></tr>`).join("");
  paintSwatches(body);
}

// download saves a link's target. A link cannot carry the read token, so
// the file is fetched with it and handed to the browser as a Blob URL; the
// link's href stays the API address, for people who copy it.
async function download(e) {
  e.preventDefault();
  const a = e.currentTarget;
  try {
    const r = await fetch(a.href, { headers: authHeaders({}) });
    if (!r.ok) throw apiError(a.getAttribute("href"), r.status, await r.text());
    const blob = URL.createObjectURL(await r.blob());
    const save = document.createElement("a");
    save.href = blob;
    save.download = a.download;
    document.body.appendChild(save);
    save.click();
    save.remove();
    // The browser reads the Blob after click returns.
    setTimeout(() => URL.revokeObjectURL(blob), 60_000);
  } catch (err) {
    setStatus("Could not download: " + err.message);
  }
}

function setDownloads(w) {
  const p = { target: state.target, from: iso(w.b.from), to: iso(w.b.to), res: state.res, by: "h3" };
  const stamp = iso(w.b.from).replace(/[:.]/g, "");
  const csv = $("#dl-csv"), gj = $("#dl-geojson");
  csv.href = url("catchment", { ...p, format: "csv" });
  csv.download = `catchmap-${state.target}-${stamp}.csv`;
  gj.href = url("catchment", { ...p, format: "geojson" });
  gj.download = `catchmap-${state.target}-${stamp}.geojson`;
}

// ---- timeline ----

let plot = null, plotKey = "", marks = { shifts: [], annotations: [] };

function timelineRange(w) {
  const len = w.b.to - w.b.from;
  const to = w.b.live ? w.b.to.getTime() : Math.min(Date.now(), w.b.to.getTime() + len);
  let from = Math.min(w.b.from.getTime() - len, to - 3600_000);
  if (state.mode === "diff") from = Math.min(from, w.a.from.getTime() - len / 2);
  const span = (Math.max(to, w.b.to.getTime()) - from) / 1000;
  const step = Math.max(60, Math.ceil(span / 300 / 60) * 60);
  return { from: new Date(from), to: new Date(Math.max(to, w.b.to.getTime())), step };
}

// shownRange is the part of the timeline's range worth showing: from the
// first step with data (or the earliest window on screen, if sooner), with
// a little context before it, to the end. A new deployment's quarter hour
// of data is not squeezed into a corner of an empty hour.
function shownRange(tl, w, range) {
  let lo = w.b.from.getTime();
  if (state.mode === "diff") lo = Math.min(lo, w.a.from.getTime());
  const first = tl.steps.find((s) => s.probes > 0);
  if (first) lo = Math.min(lo, Date.parse(first.time));
  const to = range.to.getTime();
  const from = Math.max(range.from.getTime(), lo - (to - lo) * 0.05);
  return [from / 1000, to / 1000];
}

function renderTimeline(tl, notes, w, range) {
  const sites = [...new Set(tl.steps.flatMap((s) => Object.keys(s.shares)))].sort();
  const xs = tl.steps.map((s) => Date.parse(s.time) / 1000);
  // Stacked areas: series k is the running total up to site k, drawn from
  // the tallest down so each band shows its own site's colour.
  const cum = sites.map(() => []);
  for (const s of tl.steps) {
    let acc = 0;
    sites.forEach((site, k) => { acc += s.shares[site] || 0; cum[k].push(s.probes ? acc : null); });
  }
  const order = sites.map((_, k) => sites.length - 1 - k);
  const data = [xs, ...order.map((k) => cum[k])];
  marks = {
    shifts: tl.shifts.map((s) => ({ t: Date.parse(s.time) / 1000, title: `shift: ${pct(s.moved_share)} moved` })),
    annotations: notes.map((a) => ({ t: Date.parse(a.time) / 1000, title: a.text })),
    windows: [{ cls: "", from: w.b.from / 1000, to: w.b.to / 1000 }]
      .concat(state.mode === "diff" ? [{ cls: "before", from: w.a.from / 1000, to: w.a.to / 1000 }] : []),
    range: shownRange(tl, w, range),
  };
  const key = sites.map((s) => s + siteColour(s)).join(",");
  const el = $("#timeline");
  if (plot && plotKey === key) {
    plot.setData(data); // rescales x to marks.range
    return;
  }
  if (plot) plot.destroy();
  plotKey = key;
  plot = new uPlot({
    width: Math.max(300, el.clientWidth || 800), height: 150,
    legend: { show: false },
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    scales: { x: { time: true, range: () => marks.range }, y: { range: [0, 1] } },
    // UTC and 24-hour ISO-like labels, as everywhere else on the page.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    fmtDate: (tpl) => uPlot.fmtDate(utcTemplate(tpl)),
    axes: [{}, { values: (u, vs) => vs.map((v) => Math.round(v * 100) + "%"), size: 45 }],
    series: [{}, ...order.map((k) => ({
      label: sites[k], stroke: siteColour(sites[k]), fill: siteColour(sites[k]), width: 1, points: { show: false },
    }))],
    hooks: { draw: [placeMarks], setSelect: [brushed] },
  }, data, el);
  window.catchmap.plot = plot;
}

// utcTemplate turns uPlot's US-style axis templates (4:05pm, 11/25/26)
// into 24-hour times and ISO dates.
function utcTemplate(tpl) {
  return tpl.replace("{h}{aa}", "{HH}:00").replace(/\{h\}/g, "{HH}").replace(/\{aa\}/g, "")
    .replace("{M}/{D}/{YY}", "{YYYY}-{MM}-{DD}").replace("{M}/{D}", "{MM}-{DD}");
}

function placeMarks(u) {
  for (const m of u.over.querySelectorAll(".tl-mark, .tl-window")) m.remove();
  const x = (t) => u.valToPos(t, "x");
  for (const win of marks.windows) {
    const d = document.createElement("div");
    d.className = "tl-window " + win.cls;
    d.style.left = x(win.from) + "px";
    d.style.width = Math.max(1, x(win.to) - x(win.from)) + "px";
    u.over.appendChild(d);
  }
  for (const [cls, list] of [["shift", marks.shifts], ["annotation", marks.annotations]]) {
    for (const m of list) {
      const d = document.createElement("div");
      d.className = "tl-mark " + cls;
      d.dataset.time = new Date(m.t * 1000).toISOString();
      d.title = m.title;
      d.style.left = x(m.t) + "px";
      u.over.appendChild(d);
    }
  }
}

function brushed(u) {
  if (u.select.width < 3) return;
  const from = u.posToVal(u.select.left, "x"), to = u.posToVal(u.select.left + u.select.width, "x");
  u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  state.from = new Date(from * 1000).toISOString();
  state.to = new Date(to * 1000).toISOString();
  changed();
}

// ---- refresh ----

let gen = 0, inflight = null, renders = 0;

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
      fetchJSON("geojson", url("catchment", { ...common, ...win, by: "h3", format: "geojson" }), signal, poll, sameFeatures),
      state.mode === "diff"
        ? fetchJSON("diff", url("diff", { ...common, a_from: iso(w.a.from), a_to: iso(w.a.to), b_from: win.from, b_to: win.to }), signal)
        : null,
    ];
    const side = [
      fetchJSON("timeline", url("timeline", { target: state.target, from: iso(range.from), to: iso(range.to), step: range.step + "s" }), signal),
      fetchJSON("annotations", url("annotations", { target: state.target, from: iso(range.from), to: iso(range.to) }), signal),
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
  $("#diff-panel").hidden = !d;
  if (d) renderFlows(d, w);
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

function syncControls() {
  $("#target").value = state.target;
  $("#res").value = state.res;
  for (const r of document.querySelectorAll('input[name="mode"]')) r.checked = r.value === state.mode;
  $("#metric").value = state.metric;
  $("#metric-wrap").hidden = state.mode !== "latency";
  $("#show-probes").checked = state.probes;
  $("#live").disabled = !state.from;
  const w = windows();
  $("#window").textContent = w.b.live ? "last 15 min" : `${fmtTime(w.b.from)} – ${fmtTime(w.b.to)}`;
}

async function loadTargets() {
  const { data } = await fetchJSON("targets", "api/v1/targets");
  const names = (data.targets || []).map((t) => t.name || t.target);
  if (state.target && !names.includes(state.target)) names.unshift(state.target);
  if (!state.target) state.target = names[0] || "";
  $("#target").innerHTML = names.map((name) => `<option>${esc(name)}</option>`).join("");
  if (!names.length) setStatus("The plan has no targets yet: add one with PUT /api/v1/targets, or open this page with ?target=NAME.");
}

async function main() {
  takeToken();
  readState();
  initMap();
  $("#target").addEventListener("change", (e) => { state.target = e.target.value; changed(); });
  $("#res").addEventListener("change", (e) => { state.res = e.target.value; changed(); });
  $("#metric").addEventListener("change", (e) => { state.metric = e.target.value; changed(); });
  for (const r of document.querySelectorAll('input[name="mode"]')) {
    r.addEventListener("change", () => { state.mode = r.value; changed(); });
  }
  $("#show-probes").addEventListener("change", (e) => { state.probes = e.target.checked; changed(); });
  $("#live").addEventListener("click", () => { state.from = state.to = ""; changed(); });
  for (const a of document.querySelectorAll("#dl-csv, #dl-geojson")) a.addEventListener("click", download);
  $("#pin-before").addEventListener("click", () => {
    const w = windows();
    state.a_from = iso(w.b.from);
    state.a_to = iso(w.b.to);
    changed();
  });
  window.addEventListener("resize", () => { if (plot) plot.setSize({ width: $("#timeline").clientWidth, height: 150 }); });
  // With ?target= the map need not wait for the plan.
  const targets = loadTargets().catch((e) => setStatus("Could not load the targets: " + e.message));
  if (!state.target) await targets;
  writeState();
  syncControls();
  await Promise.all([refresh(false), targets.then(syncControls)]);
  setInterval(() => { if (!document.hidden) refresh(true); }, POLL_MS);
}

main();
