// The sites legend, and in latency mode the colour scale above it.

import { SCALE_GRADIENT, swatch, paintSwatches } from "./colours.js";
import { $ } from "./dom.js";
import { esc, pct } from "./format.js";

// renderLegend lists sites: the catchment's, or in diff mode the diff's
// with their shares before and after. ctx is the cells' style context.
export function renderLegend(sites, ctx) {
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
    html += `<tr data-site="${esc(s.site)}" data-share="${s.share ?? s.share_b}"><td>${swatch(s.site)}${esc(s.site)}</td>`;
    html += ctx.mode === "diff"
      ? `<td class="num">${pct(s.share_a)}</td><td class="num">${pct(s.share_b)}</td>`
      : `<td class="num">${pct(s.share)}</td><td class="num">${s.probes}</td>`;
    html += `<td class="name" title="${esc(s.name || "")}">${esc(shortName(s.name))}</td></tr>`;
  }
  html += "</tbody></table>";
  el.innerHTML = html;
  paintSwatches(el);
  const bar = el.querySelector(".scale");
  if (bar) bar.style.background = SCALE_GRADIENT;
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
