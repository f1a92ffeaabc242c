// Colours: a site's, on the map and wherever the site is named, and the
// latency scale.

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

export const SCALE_GRADIENT = `linear-gradient(to right, ${SCALE.join(", ")})`;

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
export function assignColours(codes) {
  const used = new Set();
  colours = new Map();
  for (const c of [...new Set(codes)].filter(Boolean).sort()) {
    let i = hashSlot(c);
    for (let k = 0; k < PALETTE.length && used.has(i); k++) i = (i + 1) % PALETTE.length;
    used.add(i);
    colours.set(c, PALETTE[i]);
  }
}

export function siteColour(site) {
  if (!site) return UNSERVED;
  return colours.get(site) || PALETTE[hashSlot(site)];
}

// makeScale maps latencies to SCALE, its top step at the 95th percentile
// of the values (at least 1 ms) so that one outlier does not wash out the
// rest; f.max is that top, for the legend. A cell with no value (null)
// gets the unserved grey.
export function makeScale(values) {
  const v = values.filter((x) => x != null).sort((a, b) => a - b);
  const hi = v.length ? Math.max(1, v[Math.floor((v.length - 1) * 0.95)]) : 1;
  const f = (x) => (x == null ? UNSERVED : SCALE[Math.min(SCALE.length - 1, Math.max(0, Math.floor((x / hi) * SCALE.length)))]);
  f.max = hi;
  return f;
}

// swatch is the HTML of a site's colour chip, coloured by paintSwatches.
export function swatch(site) {
  return `<span class="swatch" data-colour="${siteColour(site)}"></span>`;
}

// paintSwatches colours the chips under root. The page's CSP (style-src
// 'self') refuses style attributes in HTML, but not styles set from script.
export function paintSwatches(root) {
  for (const el of root.querySelectorAll("[data-colour]")) el.style.background = el.dataset.colour;
}
