// The cells' canvas, for more cells than SVG paths can carry: 10,000
// Leaflet layers take seconds to build, project and lay out, while one
// canvas draws them in a few hundred milliseconds.

// MIN_CELL_PX is how wide a cell should at least look: a res-3 cell is 3 px
// at world zoom, too small to see without an outline in its own colour.
export const MIN_CELL_PX = 5;

// mercator projects to Leaflet's zoom-0 pixels (EPSG:3857, 256 px world).
function mercator(lon, lat) {
  const φ = (Math.max(-85.0511287798, Math.min(85.0511287798, lat)) * Math.PI) / 180;
  return [((lon + 180) / 360) * 256, (0.5 - Math.log(Math.tan(Math.PI / 4 + φ / 2)) / (2 * Math.PI)) * 256];
}

// CellCanvas is a Leaflet layer drawing polygon features on one canvas,
// with hover and click found by testing the pointer against the polygons.
export const CellCanvas = L.Layer.extend({
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
