// The header's controls: each sets the state, and shows it back after any
// change, the user's or the page's.

import { fetchJSON } from "./api.js";
import { $, setStatus } from "./dom.js";
import { esc, iso, fmtTime } from "./format.js";
import { state, windows } from "./state.js";

// initControls makes each control set its part of the state and then call
// onChange. "Use this window as before" is one of them, in the diff panel.
export function initControls(onChange) {
  $("#target").addEventListener("change", (e) => { state.target = e.target.value; onChange(); });
  $("#res").addEventListener("change", (e) => { state.res = e.target.value; onChange(); });
  $("#metric").addEventListener("change", (e) => { state.metric = e.target.value; onChange(); });
  for (const r of document.querySelectorAll('input[name="mode"]')) {
    r.addEventListener("change", () => { state.mode = r.value; onChange(); });
  }
  $("#show-probes").addEventListener("change", (e) => { state.probes = e.target.checked; onChange(); });
  $("#live").addEventListener("click", () => { state.from = state.to = ""; onChange(); });
  $("#pin-before").addEventListener("click", () => {
    const w = windows();
    state.a_from = iso(w.b.from);
    state.a_to = iso(w.b.to);
    onChange();
  });
}

export function syncControls() {
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

// loadTargets fills the target picker from the plan, keeping a target the
// URL names even if the plan lacks it, and picks the first when none is set.
export async function loadTargets() {
  const { data } = await fetchJSON("targets", "api/v1/targets");
  const names = (data.targets || []).map((t) => t.name || t.target);
  if (state.target && !names.includes(state.target)) names.unshift(state.target);
  if (!state.target) state.target = names[0] || "";
  $("#target").innerHTML = names.map((name) => `<option>${esc(name)}</option>`).join("");
  if (!names.length) setStatus("The plan has no targets yet: add one with PUT /api/v1/targets, or open this page with ?target=NAME.");
}
