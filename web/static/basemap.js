// The basemap: Natural Earth's countries from the vendored world-atlas,
// under everything else on the map.

import { setStatus } from "./dom.js";

// addBasemap draws the countries in the map's "basemap" pane; a failure is
// told on the status line, and the data is drawn without it.
export function addBasemap(map) {
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
