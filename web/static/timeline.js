// The timeline: each site's share over time as stacked areas (uPlot), with
// the catchment shifts, the annotations and the windows on screen marked.
// Dragging over it chooses a window.

import { siteColour } from "./colours.js";
import { $ } from "./dom.js";
import { pct } from "./format.js";
import { state } from "./state.js";

let plot = null, plotKey = "", marks = { shifts: [], annotations: [] };
let onBrush = () => {};

// initTimeline sets what a drag over the timeline does: onBrush(from, to)
// gets the chosen window as Dates.
export function initTimeline(brush) {
  onBrush = brush;
  window.addEventListener("resize", () => { if (plot) plot.setSize({ width: $("#timeline").clientWidth, height: 150 }); });
}

// timelinePlot is the uPlot on screen, or null before the first timeline.
export function timelinePlot() { return plot; }

// timelineRange is what to ask the API for around the windows w: at least
// an hour, some context on either side, in at most 300 steps of whole minutes.
export function timelineRange(w) {
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

// renderTimeline draws the API's timeline tl and annotations notes, asked
// for over range (timelineRange(w)). The plot is built again only when its
// sites or their colours change; otherwise its data is replaced.
export function renderTimeline(tl, notes, w, range) {
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
}

// utcTemplate turns uPlot's US-style axis templates (4:05pm, 11/25/26)
// into 24-hour times and ISO dates.
function utcTemplate(tpl) {
  return tpl.replace("{h}{aa}", "{HH}:00").replace(/\{h\}/g, "{HH}").replace(/\{aa\}/g, "")
    .replace("{M}/{D}/{YY}", "{YYYY}-{MM}-{DD}").replace("{M}/{D}", "{MM}-{DD}");
}

// placeMarks lays the marks over the plot after each draw, as elements
// rather than canvas strokes, so that they carry a title and a time.
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

// brushed ends a drag: a selection narrower than 3 px is taken for a click.
function brushed(u) {
  if (u.select.width < 3) return;
  const from = u.posToVal(u.select.left, "x"), to = u.posToVal(u.select.left + u.select.width, "x");
  u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  onBrush(new Date(from * 1000), new Date(to * 1000));
}
