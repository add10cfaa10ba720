// The operator dashboard: GraphQL subscriptions (graphql-transport-ws) for every change, and one
// GraphQL query for the picture as it is, made once the websocket is up (changes pushed meanwhile
// are held and applied on top of it); nothing polls the server. After a websocket reconnect the
// picture is fetched again, since changes made while it was down were not pushed.
// Times are shown in the browser's zone; power in kW.

const OFFLINE_AFTER_S = Number(document.querySelector('meta[name="adrstack-offline-after"]').content) || 180;
const CHART_PAST_S = 45 * 60;      // the chart shows the last 45 minutes ...
const CHART_FUTURE_S = 15 * 60;    // ... and the next 15, so an upcoming event's window shows
const STALE_S = 5 * 60;            // a VEN silent this long no longer counts in the aggregate
const MAX_VEN_LINES = 12;          // VENs drawn one by one (the aggregate counts them all)
const TOKEN_KEY = "adrstack-api-token";
const POWER = new Set(["RealPower", "powerReal", "REAL_POWER"]);
const TO_KW = { W: 1e-3, "J/s": 1e-3, kW: 1 };

// The GraphQL documents live in operations.json, where the tests validate them against the schema.
const OPERATIONS = await (await fetch("static/dashboard/operations.json")).json();
function operation(name) {
  const text = OPERATIONS.operations[name];
  const used = Object.entries(OPERATIONS.fragments).filter(([fragment]) => text.includes(`...${fragment}`));
  return [text, ...used.map(([, body]) => body)].join("\n");
}

const state = {
  vens: new Map(),      // venId -> Ven
  groups: [],
  events: new Map(),    // eventId -> Event
  programs: [],
  power: new Map(),     // venId -> Map(rId -> [[t, kW], ...] sorted by t)
  focus: null,          // the event the chart's baseline is about
  pinnedFocus: false,   // the operator picked it
  performance: new Map(),  // eventId -> eventPerformance answer
};

const $ = (selector) => document.querySelector(selector);
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });
const kwFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const localTime = (iso) => (iso ? timeFormat.format(new Date(iso)) : "");
const kw = (value) => (value == null || Number.isNaN(value) ? "–" : `${kwFormat.format(value)} kW`);
const seconds = (iso) => Date.parse(iso) / 1000;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value != null) node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c != null).map((c) => (c instanceof Node ? c : String(c))));
  return node;
}

// ---------------------------------------------------------------- talking to the api

function token() { return sessionStorage.getItem(TOKEN_KEY); }

class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
  }
}

async function gql(query, variables = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const response = await fetch("graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  let body;
  try { body = await response.json(); } catch { throw new Error(`the api answered ${response.status}`); }
  // 401: no token or not a valid one. 403: the token's role may not do this (shown where it was tried).
  if (response.status === 401) {
    askForToken(`${(body.errors || []).map((e) => e.message).join("; ")}: enter an API token`);
    throw new GraphQLError(body.errors || [{ message: `HTTP ${response.status}` }]);
  }
  if (body.errors) throw new GraphQLError(body.errors);
  return body.data;
}

function showStatus(text, error = false) {
  const status = $("#status");
  status.textContent = text;
  status.className = error ? "error" : "";
}

let waitingForToken = false;
function askForToken(why) {
  waitingForToken = true;
  $("#login").hidden = false;
  showStatus(why, true);
}

$("#login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
  $("#token").value = "";
  $("#login").hidden = true;
  waitingForToken = false;
  start();
});
$("#forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  stopSubscriptions();
  askForToken("token forgotten; enter an API token to see the data");
});

// ---------------------------------------------------------------- the picture as it is

async function loadSnapshot() {
  const since = new Date(Date.now() - CHART_PAST_S * 1000).toISOString();
  const until = new Date(Date.now() + 60 * 1000).toISOString();   // a VEN's clock may run ahead a little
  const data = await gql(operation("snapshot"), { since, until });
  state.vens = new Map(data.vens.map((v) => [v.venId, v]));
  state.groups = data.groups;
  state.events = new Map(data.events.map((e) => [e.eventId, e]));
  state.programs = data.programs;
  state.power = new Map();
  addReadings(data.readings.reverse());   // oldest first: each lands at its series' end
  pickFocus();
  renderAll();
  $("#forget").hidden = !token();
  showStatus(`loaded ${timeFormat.format(new Date())}`);
}

// ---------------------------------------------------------------- subscriptions

let client = null;
let disposers = [];
let buffering = true;      // until the snapshot is in, pushed changes wait here
const buffered = [];
const MAX_BUFFERED = 10000;
let loading = null;

function refreshSnapshot() {
  if (!loading) {
    loading = (async () => {
      try {
        await loadSnapshot();
      } catch (e) {
        if (!waitingForToken) showStatus(`could not load: ${e.message}`, true);
        return;
      } finally {
        loading = null;
      }
      buffering = false;
      for (const apply of buffered.splice(0)) apply();
    })();
  }
  return loading;
}

function wsUrl() {
  const url = new URL("graphql", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

function setLive(live, text) {
  const badge = $("#live");
  badge.className = `badge ${live ? "online" : "offline"}`;
  badge.textContent = text;
}

function startSubscriptions() {
  stopSubscriptions();
  client = graphqlWs.createClient({
    url: wsUrl(),
    connectionParams: () => (token() ? { authorization: `Bearer ${token()}` } : {}),
    retryAttempts: Infinity,
    shouldRetry: () => !waitingForToken,
    retryWait: async (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(1000 * 2 ** retries, 15000))),
    on: {
      connected: () => {
        setLive(true, "live");
        refreshSnapshot();
      },
      closed: (event) => {
        setLive(false, "reconnecting…");
        buffering = true;   // whatever changes until the next snapshot was not pushed
        if (event && (event.code === 4401 || event.code === 4403)) askForToken(`${event.reason}: enter an API token`);
      },
    },
  });
  subscribe("eventUpdates",
    ({ eventUpdates: u }) => onEvent(u.event, u.transition));
  subscribe("optResponses",
    ({ optResponses: r }) => onOptResponse(r));
  subscribe("venRegistrations",
    ({ venRegistrations: r }) => onRegistration(r));
  subscribe("venActivity",
    ({ venActivity: a }) => onActivity(a));
  subscribe("readings",
    ({ readings }) => { addReadings(readings); scheduleRender(["chart", "vens"]); });
}

function subscribe(name, onData) {
  disposers.push(client.subscribe({ query: operation(name) }, {
    next: (message) => {
      if (message.errors) showStatus(message.errors.map((e) => e.message).join("; "), true);
      else if (!buffering) onData(message.data);
      else {
        buffered.push(() => onData(message.data));
        if (buffered.length > MAX_BUFFERED) buffered.shift();
      }
    },
    error: (error) => showStatus(`subscription failed: ${error.message || error.reason || error}`, true),
    complete: () => {},
  }));
}

function stopSubscriptions() {
  for (const dispose of disposers) dispose();
  disposers = [];
  if (client) client.dispose();
  client = null;
}

function onEvent(event, transition) {
  state.events.set(event.eventId, event);
  // A program's occurrence created, moved or ended: its next windows changed.
  if (event.eventId.startsWith("prg-")) refetchSoon("programs", refreshPrograms);
  if (state.focus === event.eventId && (transition === "active" || transition === "completed")) {
    state.performance.delete(event.eventId);   // the measured part changed: ask again
  }
  pickFocus();
  scheduleRender(["events", "chart", "forms"], { event: event.eventId });
}

function onOptResponse(response) {
  const event = state.events.get(response.eventId);
  if (!event) return;   // an event older than the 50 shown
  const others = event.currentResponses.filter((r) => r.venId !== response.venId);
  const previous = event.currentResponses.find((r) => r.venId === response.venId);
  others.push({ venId: response.venId, optType: response.optType,
                respondedAt: previous && previous.optType === response.optType ? previous.respondedAt : response.respondedAt });
  event.currentResponses = others.sort((a, b) => a.venId.localeCompare(b.venId));
  const optedIn = others.filter((r) => r.optType === "optIn").length;
  const optedOut = others.length - optedIn;
  const named = event.targets.venIds.length;
  const onlyVens = !event.targets.groupIds.length && !event.targets.resourceIds.length && !event.targets.marketContexts.length;
  event.responseSummary = { optedIn, optedOut, noResponse: onlyVens ? Math.max(0, named - others.length) : null };
  scheduleRender(["events"], { event: event.eventId });
}

function onRegistration(registration) {
  const known = state.vens.get(registration.venId) || { venId: registration.venId, status: null, lastSeenAt: null };
  if (registration.kind === "registered") {
    Object.assign(known, { venName: registration.venName, registeredAt: known.registeredAt || registration.occurredAt,
                           deregisteredAt: null, lastSeenAt: registration.occurredAt });
  } else {
    known.deregisteredAt = registration.occurredAt;
  }
  state.vens.set(registration.venId, known);
  scheduleRender(["vens", "forms"], { ven: registration.venId });
}

function onActivity(activity) {
  const ven = state.vens.get(activity.venId);
  if (!ven) return;   // its registration arrives on venRegistrations
  if (!ven.lastSeenAt || seconds(activity.occurredAt) > seconds(ven.lastSeenAt)) ven.lastSeenAt = activity.occurredAt;
  if (activity.kind === "report.status") refetchSoon(`status ${ven.venId}`, () => refreshStatus(ven.venId));
  scheduleRender(["vens"]);
}

// A pushed fact that names what changed but does not carry it (a VEN's new resource status, a
// program's new occurrence) is followed by one query for that piece, at most once a second each.
const refetching = new Map();
function refetchSoon(key, fetchIt) {
  if (refetching.has(key)) return;
  refetching.set(key, setTimeout(async () => {
    try { await fetchIt(); } catch (e) { showStatus(`${key}: ${e.message}`, true); } finally { refetching.delete(key); }
  }, 1000));
}

async function refreshStatus(venId) {
  const { ven } = await gql(operation("venStatus"), { id: venId });
  const known = state.vens.get(venId);
  if (ven && known) { known.status = ven.status; scheduleRender(["vens"], { ven: venId }); }
}

async function refreshPrograms() {
  state.programs = (await gql(operation("programs"))).programs;
  scheduleRender(["programs"]);
}

// ---------------------------------------------------------------- load

function addReadings(readings) {
  for (const r of readings) {
    if (!r.venId || !(POWER.has(r.measurement) || r.unit === "W")) continue;
    const factor = TO_KW[r.unit] ?? 1e-3;
    let series = state.power.get(r.venId);
    if (!series) state.power.set(r.venId, (series = new Map()));
    let points = series.get(r.rId);
    if (!points) series.set(r.rId, (points = []));
    const t = seconds(r.at);
    // In time order, but a VEN's late report may land before readings already drawn.
    let i = points.length;
    while (i > 0 && points[i - 1][0] > t) i--;
    if (i > 0 && points[i - 1][0] === t) points[i - 1][1] = r.value * factor;
    else points.splice(i, 0, [t, r.value * factor]);
  }
  const horizon = Date.now() / 1000 - CHART_PAST_S - STALE_S;
  for (const series of state.power.values()) {
    for (const points of series.values()) {
      let drop = 0;
      while (drop < points.length - 1 && points[drop][0] < horizon) drop++;
      if (drop) points.splice(0, drop);
    }
  }
}

// Each VEN's load now: the sum of its power rIDs' latest readings (null once it went silent).
function currentLoad(venId) {
  const series = state.power.get(venId);
  if (!series) return null;
  let load = 0;
  let newest = -Infinity;
  for (const points of series.values()) {
    if (!points.length) continue;
    const [t, value] = points[points.length - 1];
    load += value;
    newest = Math.max(newest, t);
  }
  return Date.now() / 1000 - newest <= STALE_S ? load : null;
}

// The VENs drawn one by one: the largest loads now.
function chartedVens() {
  return [...state.power.keys()].map((venId) => [venId, currentLoad(venId) ?? -1])
    .sort((a, b) => b[1] - a[1]).slice(0, MAX_VEN_LINES).map(([venId]) => venId).sort();
}

// At each time a reading arrived: the aggregate (the sum of every VEN's load, each the sum of its
// power rIDs at their latest readings; a VEN silent for STALE_S drops out) and the charted VENs'
// loads. Incremental, so it stays linear in the readings for a fleet.
function loadSeries(lines) {
  const all = [];
  for (const [venId, series] of state.power) {
    for (const [rId, points] of series) for (const [t, value] of points) all.push([t, venId, rId, value]);
  }
  all.sort((a, b) => a[0] - b[0]);
  // The window opens mid-stream: until each VEN reporting at its start has been read once, the
  // aggregate would count only some of them, so it starts once they all have.
  const firstOf = new Map();
  for (const [t, venId] of all) if (!firstOf.has(venId)) firstOf.set(venId, t);
  const opening = all.length ? all[0][0] : 0;
  let warm = opening;
  for (const t of firstOf.values()) if (t - opening <= STALE_S && t > warm) warm = t;
  const charted = new Set(lines);
  const rids = new Map();      // venId -> Map(rId -> kW)
  const loads = new Map();     // venId -> { t, load, counted }
  let total = 0;
  let lastSweep = -Infinity;
  const times = [];
  const aggregate = [];
  const perVen = new Map(lines.map((venId) => [venId, []]));
  for (const [t, venId, rId, value] of all) {
    let own = rids.get(venId);
    if (!own) rids.set(venId, (own = new Map()));
    own.set(rId, value);
    let load = 0;
    for (const v of own.values()) load += v;
    const before = loads.get(venId);
    total += load - (before && before.counted ? before.load : 0);
    loads.set(venId, { t, load, counted: true });
    if (t - lastSweep >= 30) {   // drop the VENs gone silent, every 30 s of readings
      lastSweep = t;
      for (const entry of loads.values()) {
        if (entry.counted && t - entry.t > STALE_S) { total -= entry.load; entry.counted = false; }
      }
    }
    const shown = t < warm ? null : Math.max(0, total);
    if (!times.length || times[times.length - 1] !== t) {
      times.push(t);
      aggregate.push(shown);
      for (const line of perVen.values()) line.push(null);
    } else {
      aggregate[aggregate.length - 1] = shown;
    }
    if (charted.has(venId)) perVen.get(venId)[times.length - 1] = load;
  }
  return { times, aggregate, perVen };
}

// ---------------------------------------------------------------- which event the chart is about

function pickFocus() {
  if (state.pinnedFocus && state.events.has(state.focus)) return;
  const now = Date.now() / 1000;
  const events = [...state.events.values()].filter((e) => e.status !== "cancelled");
  const active = events.filter((e) => e.status === "active");
  const upcoming = events.filter((e) => e.status === "near" || e.status === "far")
    .sort((a, b) => seconds(a.startAt) - seconds(b.startAt));
  const recent = events.filter((e) => e.status === "completed" && e.endAt && now - seconds(e.endAt) < CHART_PAST_S)
    .sort((a, b) => seconds(b.endAt) - seconds(a.endAt));
  const chosen = active[0] || upcoming[0] || recent[0] || null;
  state.focus = chosen ? chosen.eventId : null;
}

async function performanceOf(eventId) {
  if (state.performance.has(eventId)) return state.performance.get(eventId);
  state.performance.set(eventId, null);   // asked once per change, not per render
  try {
    const data = await gql(operation("performance"), { id: eventId });
    state.performance.set(eventId, data.eventPerformance);
    scheduleRender(["chart"]);
  } catch (e) {
    state.performance.delete(eventId);
    showStatus(`performance of ${eventId}: ${e.message}`, true);
  }
  return state.performance.get(eventId);
}

// The baseline drawn over the focused event's window: the api's (the mean of recent non-event
// weekdays at the same hours) when it has one, else the aggregate's mean in the 10 minutes before
// the event, said so beside the chart.
function baselineOf(event, series) {
  const performance = state.performance.get(event.eventId);
  if (performance === undefined && event.status !== "far" && event.status !== "near") performanceOf(event.eventId);
  if (performance && performance.baselineKw != null) {
    return { value: performance.baselineKw, how: `baseline: ${performance.method}` };
  }
  const start = seconds(event.startAt);
  const before = series.times.map((t, i) => [t, series.aggregate[i]])
    .filter(([t, v]) => v != null && t >= start - 600 && t < start);
  if (!before.length) return null;
  const mean = before.reduce((sum, [, v]) => sum + v, 0) / before.length;
  return { value: mean, how: "baseline: the aggregate's mean over the 10 minutes before the event (no weekday history for these VENs yet)" };
}

// ---------------------------------------------------------------- rendering

const dirty = new Set();
const flashes = [];
let renderQueued = false;
function scheduleRender(parts, flash) {
  parts.forEach((p) => dirty.add(p));
  if (flash) flashes.push(flash);
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    const parts = new Set(dirty);
    dirty.clear();
    // The chart is redrawn at most once a second: a fleet's readings arrive many times a second.
    const since = performance.now() - lastChartAt;
    if (parts.has("chart") && since < 1000) {
      parts.delete("chart");
      if (!chartTimer) chartTimer = setTimeout(() => { chartTimer = null; scheduleRender(["chart"]); }, 1000 - since);
    }
    renderParts(parts);
  });
}
let lastChartAt = -Infinity;
let chartTimer = null;

function renderAll() { renderParts(new Set(["vens", "events", "programs", "chart", "forms"])); }

let lastSeries = { times: [], aggregate: [], perVen: new Map() };
function renderParts(parts) {
  if (parts.has("chart")) {
    lastChartAt = performance.now();
    lastSeries = loadSeries(chartedVens());
    renderChart(lastSeries);
  }
  if (parts.has("vens")) renderVens();
  if (parts.has("events")) renderEvents();
  if (parts.has("programs")) renderPrograms();
  if (parts.has("forms")) renderForms();
  for (const flash of flashes.splice(0)) {
    const row = flash.event ? document.querySelector(`#events tr[data-event-id="${CSS.escape(flash.event)}"]`)
                            : document.querySelector(`#vens tr[data-ven-id="${CSS.escape(flash.ven)}"]`);
    if (row) { row.classList.remove("flash"); void row.offsetWidth; row.classList.add("flash"); }
  }
}

function venState(ven) {
  if (ven.deregisteredAt) return "deregistered";
  if (!ven.lastSeenAt) return "offline";
  return Date.now() / 1000 - seconds(ven.lastSeenAt) <= OFFLINE_AFTER_S ? "online" : "offline";
}

function renderVens() {
  const groupsOf = new Map();
  for (const g of state.groups) for (const v of g.venIds) groupsOf.set(v, [...(groupsOf.get(v) || []), g.groupId]);
  const rows = [...state.vens.values()].sort((a, b) => a.venName.localeCompare(b.venName)).map((ven) => {
    const s = venState(ven);
    const status = ven.status
      ? `${ven.status.online ? "online" : "offline"}${ven.status.manualOverride ? ", manual override" : ""} (${localTime(ven.status.at)})`
      : "–";
    return el("tr", { "data-ven-id": ven.venId },
      el("td", {}, ven.venId), el("td", {}, ven.venName), el("td", { class: `state-${s}` }, s),
      el("td", {}, localTime(ven.lastSeenAt)), el("td", {}, (groupsOf.get(ven.venId) || []).join(", ")),
      el("td", {}, status), el("td", { class: "num" }, kw(currentLoad(ven.venId))));
  });
  $("#vens tbody").replaceChildren(...rows);
}

function signalText(event) {
  const levels = event.intervals.map((i) => i.payload);
  const shown = levels.length === 1 ? `${levels[0]}` : levels.join(" → ");
  return `${event.signalName} ${event.signalType} ${shown}${event.testEvent ? " (test)" : ""}`;
}

function targetText(targets) {
  const parts = [];
  if (targets.venIds.length) parts.push(`VENs ${targets.venIds.join(", ")}`);
  if (targets.groupIds.length) parts.push(`groups ${targets.groupIds.join(", ")}`);
  if (targets.resourceIds.length) parts.push(`resources ${targets.resourceIds.join(", ")}`);
  if (targets.marketContexts.length) parts.push(`programs ${targets.marketContexts.join(", ")}`);
  return parts.join("; ");
}

const cancelArmed = new Set();
function renderEvents() {
  const events = [...state.events.values()].sort((a, b) => seconds(b.startAt) - seconds(a.startAt));
  const rows = events.map((event) => {
    const summary = event.responseSummary;
    const responses = el("td", { class: "responses" },
      el("div", {}, `${summary.optedIn} in, ${summary.optedOut} out${summary.noResponse != null ? `, ${summary.noResponse} no answer` : ""}`),
      ...event.currentResponses.map((r) =>
        el("div", { class: `opt-${r.optType}`, "data-ven-id": r.venId, title: `answered ${localTime(r.respondedAt)}` },
          `${r.venId}: ${r.optType}`)));
    const actions = el("td", {});
    if (event.status !== "completed" && event.status !== "cancelled") {
      const armed = cancelArmed.has(event.eventId);
      actions.append(el("button", { type: "button", class: "danger", "data-action": "cancel", onclick: () => cancelEvent(event.eventId) },
        armed ? "Really cancel?" : "Cancel"));
    }
    actions.append(el("button", { type: "button", "data-action": "chart", onclick: () => focusOn(event.eventId) }, "Chart"));
    return el("tr", { "data-event-id": event.eventId, class: event.eventId === state.focus ? "focused" : null },
      el("td", {}, event.eventId, el("div", { class: "note" }, `modification ${event.modificationNumber}`)),
      el("td", { class: `status-${event.status}` }, event.status),
      el("td", {}, signalText(event)), el("td", {}, localTime(event.startAt)),
      el("td", {}, event.endAt ? localTime(event.endAt) : "until cancelled"),
      el("td", {}, targetText(event.targets)), responses, actions);
  });
  $("#events tbody").replaceChildren(...rows);
}

function renderPrograms() {
  const rows = state.programs.map((p) => el("tr", { "data-program-id": p.programId },
    el("td", {}, p.programId, p.name ? el("div", { class: "note" }, p.name) : null),
    el("td", {}, p.marketContext),
    el("td", {}, [...p.venIds, ...p.groupIds.map((g) => `group ${g}`)].join(", ")),
    el("td", {}, `${p.signalName} ${p.level}`),
    el("td", {}, ...p.upcoming.map((o) => el("div", {}, `${localTime(o.startAt)} – ${localTime(o.endAt)}`)))));
  $("#programs tbody").replaceChildren(...rows);
}

let plot = null;
let plotKey = "";
function renderChart(series) {
  const now = Date.now() / 1000;
  const event = state.focus ? state.events.get(state.focus) : null;
  const baseline = event ? baselineOf(event, series) : null;
  const lines = [...series.perVen.keys()];
  const times = series.times.slice();
  // Two points at the edges of the event's window carry the baseline line across it.
  const windowStart = event ? seconds(event.startAt) : null;
  const windowEnd = event ? (event.endAt ? seconds(event.endAt) : now + CHART_FUTURE_S) : null;
  const extra = baseline ? [windowStart, Math.min(windowEnd, chartRange()[1])] : [];
  const allTimes = [...new Set([...times, ...extra])].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const pick = (values) => allTimes.map((t) => (index.has(t) ? values[index.get(t)] : null));
  const data = [allTimes, pick(series.aggregate), ...lines.map((v) => pick(series.perVen.get(v)))];
  if (baseline) data.push(allTimes.map((t) => (t >= windowStart && t <= windowEnd ? baseline.value : null)));

  const key = `${lines.join(",")}|${baseline ? 1 : 0}`;
  if (!plot || key !== plotKey) {
    if (plot) plot.destroy();
    plotKey = key;
    const palette = ["#4e79a7", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac", "#e15759",
                     "#ff9da7", "#86bcb6", "#8cd17d", "#a0cbe8"];
    plot = new uPlot({
      width: Math.max(320, $("#chart").clientWidth || 800), height: 320,
      scales: { x: { time: true, range: () => chartRange() },
                y: { range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.1)] } },
      axes: [{}, { label: "kW", values: (u, ticks) => ticks.map((t) => kwFormat.format(t)) }],
      series: [
        { value: (u, t) => (t == null ? "" : timeFormat.format(new Date(t * 1000))) },
        { label: "aggregate", stroke: "#1d2430", width: 2.5, spanGaps: true, value: (u, v) => kw(v) },
        ...lines.map((venId, i) => ({ label: state.vens.get(venId)?.venName || venId, stroke: palette[i % palette.length],
                                      width: 1, spanGaps: true, value: (u, v) => kw(v) })),
        ...(baseline ? [{ label: "baseline", stroke: "#d65c00", width: 2, dash: [8, 6], spanGaps: true, points: { show: false },
                                value: (u, v) => kw(v) }] : []),
      ],
      hooks: { drawClear: [drawEventWindows] },
    }, data, $("#chart"));
  } else {
    plot.setData(data);
  }

  const last = series.times.length - 1;
  const aggregateNow = last >= 0 && now - series.times[last] <= STALE_S ? series.aggregate[last] : null;
  $("#aggregate-kw").textContent = kw(aggregateNow);
  $("#baseline-kw").textContent = baseline ? kw(baseline.value) : "–";
  const active = event && event.status === "active";
  const shed = baseline && active && aggregateNow != null ? baseline.value - aggregateNow : null;
  $("#shed-kw").textContent = shed == null ? "–" : `${kw(shed)} (${Math.round((100 * shed) / baseline.value)} %)`;
  $("#focus-event").textContent = event ? `${event.eventId} (${event.status})` : "none";
  // The numbers behind the text, unformatted (for scripts and the browser test).
  $("#aggregate-kw").dataset.kw = aggregateNow ?? "";
  $("#baseline-kw").dataset.kw = baseline ? baseline.value : "";
  $("#shed-kw").dataset.kw = shed ?? "";
  $("#focus-event").dataset.eventId = event ? event.eventId : "";
  $("#baseline-method").textContent = baseline ? baseline.how : "";
}

// The last 45 minutes, or since the first reading when there is less; ahead, a third of that (at
// least a minute, at most 15), stretched to show the start of the event the chart is about.
function chartRange() {
  const now = Date.now() / 1000;
  const first = lastSeries.times.length ? lastSeries.times[0] : now;
  const lo = Math.max(now - CHART_PAST_S, Math.min(first, now) - 60);
  let hi = now + Math.min(CHART_FUTURE_S, Math.max(60, (now - lo) / 3));
  const event = state.focus ? state.events.get(state.focus) : null;
  if (event && seconds(event.startAt) > now && seconds(event.startAt) < now + CHART_FUTURE_S) {
    hi = Math.max(hi, seconds(event.startAt) + 120);
  }
  return [lo, hi];
}

function drawEventWindows(u) {
  const { ctx } = u;
  const [lo, hi] = [u.scales.x.min, u.scales.x.max];
  ctx.save();
  for (const event of state.events.values()) {
    if (event.status === "cancelled") continue;
    const start = seconds(event.startAt);
    const end = event.endAt ? seconds(event.endAt) : hi;
    if (end < lo || start > hi) continue;
    const x0 = u.valToPos(Math.max(start, lo), "x", true);
    const x1 = u.valToPos(Math.min(end, hi), "x", true);
    ctx.fillStyle = event.eventId === state.focus ? "rgba(214, 92, 0, 0.14)" : "rgba(214, 92, 0, 0.06)";
    ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
  }
  ctx.restore();
}

function focusOn(eventId) {
  state.focus = eventId;
  state.pinnedFocus = true;
  scheduleRender(["chart", "events"]);
}

// ---------------------------------------------------------------- forms

function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function renderForms() {
  const chosen = new Set([...document.querySelectorAll("#target-vens input:checked")].map((i) => i.value));
  const vens = [...state.vens.values()].filter((v) => !v.deregisteredAt).sort((a, b) => a.venName.localeCompare(b.venName));
  $("#target-vens").replaceChildren(el("span", { class: "note" }, "VENs:"), ...vens.map((v) => el("label", {},
    el("input", { type: "checkbox", name: "venIds", value: v.venId, ...(chosen.has(v.venId) ? { checked: "" } : {}) }),
    `${v.venName} (${v.venId})`)));
  const chosenGroups = new Set([...document.querySelectorAll("#target-groups input:checked")].map((i) => i.value));
  $("#target-groups").replaceChildren(...(state.groups.length ? [el("span", { class: "note" }, "groups:")] : []),
    ...state.groups.map((g) => el("label", {},
      el("input", { type: "checkbox", name: "groupIds", value: g.groupId, ...(chosenGroups.has(g.groupId) ? { checked: "" } : {}) }),
      g.name || g.groupId)));
  const create = $("#create-event");
  if (!create.elements.start.value) create.elements.start.value = localInputValue(new Date(Date.now() + 2 * 60000));

  const select = $("#modify-event").elements.eventId;
  const current = select.value;
  const open = [...state.events.values()].filter((e) => e.status !== "completed" && e.status !== "cancelled")
    .sort((a, b) => seconds(a.startAt) - seconds(b.startAt));
  select.replaceChildren(...open.map((e) => el("option", { value: e.eventId }, `${e.eventId} (${e.status}, ${localTime(e.startAt)})`)));
  if (open.some((e) => e.eventId === current)) select.value = current;
  if (select.value !== modifyFilledFor) fillModifyForm();
}

let modifyFilledFor = null;
function fillModifyForm() {
  const form = $("#modify-event");
  const event = state.events.get(form.elements.eventId.value);
  modifyFilledFor = event ? event.eventId : null;
  if (!event) return;
  const total = event.intervals.reduce((sum, i) => sum + durationSeconds(i.duration), 0);
  form.elements.level.value = String(event.intervals[0]?.payload ?? 1);
  form.elements.start.value = localInputValue(new Date(event.startAt));
  form.elements.duration.value = String(Math.max(1, Math.round(total / 60)));
}
$("#modify-event").elements.eventId.addEventListener("change", fillModifyForm);

function durationSeconds(iso) {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(iso);
  if (!m) return 0;
  return (+(m[1] || 0)) * 86400 + (+(m[2] || 0)) * 3600 + (+(m[3] || 0)) * 60 + (+(m[4] || 0));
}

function showResult(form, text, ok) {
  const result = form.querySelector(".result");
  result.textContent = text;
  result.className = `result ${ok ? "ok" : "error"}`;
}

function errorText(error) {
  if (!(error instanceof GraphQLError)) return error.message;
  return error.errors.map((e) => e.message).join("; ");
}

$("#create-event").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  const form = submitted.target;
  const venIds = [...form.querySelectorAll('input[name="venIds"]:checked')].map((i) => i.value);
  const groupIds = [...form.querySelectorAll('input[name="groupIds"]:checked')].map((i) => i.value);
  if (!venIds.length && !groupIds.length) { showResult(form, "choose at least one VEN or group", false); return; }
  const rampUp = Number(form.elements.rampUp.value || 0);
  const input = {
    venIds, groupIds,
    startAt: new Date(form.elements.start.value).toISOString(),
    intervals: [{ duration: `PT${Number(form.elements.duration.value)}M`, payload: Number(form.elements.level.value) }],
    ...(rampUp > 0 ? { rampUp: `PT${rampUp}M` } : {}),
    idempotencyKey: crypto.randomUUID(),
  };
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const { createEvent } = await gql(operation("createEvent"), { input });
    onEvent(createEvent, "created");
    showResult(form, `created ${createEvent.eventId}, starting ${localTime(createEvent.startAt)}`, true);
    form.elements.start.value = "";
  } catch (e) {
    showResult(form, errorText(e), false);
  } finally {
    button.disabled = false;
  }
});

$("#modify-event").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  const form = submitted.target;
  const input = {
    eventId: form.elements.eventId.value,
    startAt: new Date(form.elements.start.value).toISOString(),
    intervals: [{ duration: `PT${Number(form.elements.duration.value)}M`, payload: Number(form.elements.level.value) }],
  };
  try {
    const { modifyEvent } = await gql(operation("modifyEvent"), { input });
    onEvent(modifyEvent, "modified");
    showResult(form, `modified ${modifyEvent.eventId} (modification ${modifyEvent.modificationNumber})`, true);
  } catch (e) {
    showResult(form, errorText(e), false);
  }
});

async function cancelEvent(eventId) {
  if (!cancelArmed.has(eventId)) {   // two clicks, not a dialog: a cancel reaches every VEN at once
    cancelArmed.add(eventId);
    setTimeout(() => { cancelArmed.delete(eventId); scheduleRender(["events"]); }, 5000);
    scheduleRender(["events"]);
    return;
  }
  cancelArmed.delete(eventId);
  try {
    const { cancelEvent: event } = await gql(operation("cancelEvent"),
      { id: eventId, key: crypto.randomUUID() });
    onEvent(event, "cancelled");
    showStatus(`cancelled ${eventId}`);
  } catch (e) {
    showStatus(`cancel ${eventId}: ${errorText(e)}`, true);
  }
}

// ---------------------------------------------------------------- start

function start() {
  $("#zone").textContent = zone;
  buffering = true;
  startSubscriptions();
  // Where websockets do not get through (a proxy), the page still shows the picture, not live.
  setTimeout(() => { if (buffering && !waitingForToken) refreshSnapshot(); }, 5000);
}

// Online/offline and the chart's time axis move with the clock, not with the server.
setInterval(() => scheduleRender(["vens", "chart"]), 5000);
window.addEventListener("resize", () => { if (plot) plot.setSize({ width: $("#chart").clientWidth, height: 320 }); });
// For the browser test and the curious: the state and the chart's series as drawn.
window.adrstackDashboard = {
  state,
  series: () => lastSeries,
  loads: () => {
    const { aggregate } = loadSeries([]);
    return { aggregate: aggregate.length ? aggregate[aggregate.length - 1] : null,
             vens: Object.fromEntries([...state.power.keys()].map((venId) => [venId, currentLoad(venId)])) };
  },
};
start();
