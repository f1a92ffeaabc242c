// The page's words and rows about the data: the window's summary, the
// diff panel with its flows, and the probe table.

import { swatch, paintSwatches } from "./colours.js";
import { $ } from "./dom.js";
import { esc, pct, ms, km, n, fmtTime } from "./format.js";

const MAX_PROBE_ROWS = 1000;

// renderSummary tells the catchment c of the window w in a few lines.
export function renderSummary(c, w) {
  $("#summary").innerHTML =
    `<div><b>${esc(c.target)}</b>, ${fmtTime(w.from)} – ${fmtTime(w.to)}${w.live ? " (live)" : ""}</div>` +
    `<div>${n(c.probes, "probe")}, ${n(c.results, "result")}, ${c.unlocated} unlocated</div>` +
    `<div>RTT p50 ${ms(c.rtt_p50_ms)} ms; not served by the nearest site: ${pct(c.not_nearest_share)}</div>` +
    (c.location_suspects?.length ? `<div class="flag">${c.location_suspects.length} probe(s) fail the location check</div>` : "");
}

// renderDiff shows the diff d between the windows w.a and w.b, or hides
// the panel when there is none (d is null outside diff mode).
export function renderDiff(d, w) {
  $("#diff-panel").hidden = !d;
  if (!d) return;
  $("#diff-windows").textContent = `Before ${fmtTime(w.a.from)} – ${fmtTime(w.a.to)}; after ${fmtTime(w.b.from)} – ${fmtTime(w.b.to)}`;
  $("#moved").textContent = `${d.moved_probes} of ${d.probes} probes moved (${pct(d.moved_share)} of the weight); ${d.cells_changed.length} cells changed site` +
    (d.cells_changed.length ? " (outlined in black on the map)." : ".");
  $("#flows").hidden = !d.flows.length; // a header over nothing reads as a fault
  const body = $("#flows tbody");
  body.innerHTML = d.flows.map((f) =>
    `<tr><td>${swatch(f.from)}${esc(f.from || "unserved")}</td>` +
    `<td>${swatch(f.to)}${esc(f.to || "unserved")}</td><td class="num">${f.probes}</td></tr>`).join("");
  paintSwatches(body);
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
// joined by id with the registry's names and last-seen times (reg, from
// loadRegistry).
export function renderProbeTable(windowProbes, suspects, reg) {
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
      `<td>${p.site ? `${swatch(p.site)}${esc(p.site)}` : "—"}</td>` +
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
