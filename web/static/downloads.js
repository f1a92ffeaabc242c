// The CSV and GeoJSON buttons: the window on screen, as files.

import { apiURL, fetchBlob } from "./api.js";
import { $, setStatus } from "./dom.js";
import { iso } from "./format.js";
import { state } from "./state.js";

export function initDownloads() {
  for (const a of document.querySelectorAll("#dl-csv, #dl-geojson")) a.addEventListener("click", download);
}

// setDownloads points the buttons at the catchment of the windows w.
export function setDownloads(w) {
  const p = { target: state.target, from: iso(w.b.from), to: iso(w.b.to), res: state.res, by: "h3" };
  const stamp = iso(w.b.from).replace(/[:.]/g, "");
  const csv = $("#dl-csv"), gj = $("#dl-geojson");
  csv.href = apiURL("catchment", { ...p, format: "csv" });
  csv.download = `catchmap-${state.target}-${stamp}.csv`;
  gj.href = apiURL("catchment", { ...p, format: "geojson" });
  gj.download = `catchmap-${state.target}-${stamp}.geojson`;
}

// download saves a link's target. A link cannot carry the read token, so
// the file is fetched with it and handed to the browser as a Blob URL; the
// link's href stays the API address, for people who copy it.
async function download(e) {
  e.preventDefault();
  const a = e.currentTarget;
  try {
    const blob = URL.createObjectURL(await fetchBlob(a.getAttribute("href")));
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
