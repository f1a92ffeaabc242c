// The aggregator's API, /api/v1 on this page's own origin: the read token,
// requests and their errors, and the probe registry.

// The probe registry (names, last seen) changes slowly: read at most this often.
const REGISTRY_MS = 30_000;

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
export function takeToken() {
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

// apiURL is the relative address of an API route; empty parameters are left out.
export function apiURL(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v != null) q.set(k, v);
  return "api/v1/" + path + "?" + q.toString();
}

// get sends the request with the token, and throws apiError's Error for
// anything but a 2xx.
async function get(u, signal, headers) {
  if (token) headers.Authorization = "Bearer " + token;
  const r = await fetch(u, { signal, headers });
  if (!r.ok) throw apiError(u, r.status, await r.text());
  return r;
}

async function fetchText(u, signal) {
  return (await get(u, signal, { Accept: "application/json" })).text();
}

// fetchBlob is for files to save: a link cannot carry the read token.
export async function fetchBlob(u) {
  return (await get(u, undefined, {})).blob();
}

// lists sets each named field that the API sent as null (Go's nil slice)
// to an empty list, so the rest of the code need not check.
export function lists(o, ...keys) {
  if (o) for (const k of keys) o[k] ||= [];
  return o;
}

// Responses that did not change since the last poll are not drawn again:
// redrawing 10,000 cells every 10 s would make the page sluggish.
// sameOf(old, new) compares the parsed answers where comparing the text
// would not do; it is asked only on polls.
const last = new Map();
export async function fetchJSON(key, u, signal, poll = false, sameOf = null) {
  const body = await fetchText(u, signal);
  const data = JSON.parse(body);
  const prev = last.get(key);
  const same = !!prev && (prev.body === body || (poll && !!sameOf && sameOf(prev.data, data)));
  last.set(key, { body, data });
  return { data, same };
}

// The probe registry, GET /api/v1/probes: names and last-seen times by
// probe id (result records name probes by id). Read at most every
// REGISTRY_MS, whatever the refreshes; a failure leaves the table with ids
// and says why under it, since the map itself is not affected.
const registry = { at: -Infinity, byId: new Map(), error: "", pending: null };

// loadRegistry resolves to { byId, error }; it never rejects.
export function loadRegistry() {
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
