"""``GET /``: a minimal operator dashboard (VENs and events, polled from /graphql).

The page itself holds no data and is served to anyone. When the API asks for a token (401/403),
it asks the operator for one, keeps it in the tab's sessionStorage (gone when the tab closes) and
sends it as ``Authorization: Bearer``; a viewer's token is enough."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

REFRESH_SECONDS = 5

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>adrstack operator</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
 table { border-collapse: collapse; margin-bottom: 2rem; min-width: 40rem; }
 th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; font-size: .9rem; }
 th { background: #f3f3f3; }
 #status { color: #888; font-size: .8rem; }
 .error { color: #b00; }
 #login { margin: 1rem 0; }
</style>
</head>
<body>
<h1>adrstack</h1>
<p id="status">loading…</p>
<form id="login" hidden>
 <label>API token <input id="token" type="password" autocomplete="off" size="64" required></label>
 <button type="submit">Use this token</button>
</form>
<p><button id="forget" type="button" hidden>Forget the token</button></p>
<h2>VENs</h2>
<table id="vens"><thead><tr><th>VEN id</th><th>name</th><th>registered</th><th>last seen</th></tr></thead><tbody></tbody></table>
<h2>Events</h2>
<table id="events"><thead><tr><th>event id</th><th>status</th><th>mod</th><th>signal</th><th>start</th><th>end</th><th>intervals</th><th>VENs</th><th>responses</th></tr></thead><tbody></tbody></table>
<script>
const QUERY = `{ vens { venId venName registeredAt lastSeenAt }
  events { eventId status modificationNumber signalName startAt endAt
           intervals { duration payload } targets { venIds } currentResponses { venId optType } } }`;
function cell(text) { const td = document.createElement("td"); td.textContent = text ?? ""; return td; }
const TOKEN_KEY = "adrstack-api-token";
let waitingForToken = false;
function authorization() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  document.getElementById("forget").hidden = !token;
  return token ? { Authorization: `Bearer ${token}` } : {};
}
function askForToken(why) {
  waitingForToken = true;
  document.getElementById("login").hidden = false;
  const status = document.getElementById("status");
  status.className = "error"; status.textContent = why;
}
document.getElementById("login").addEventListener("submit", event => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  document.getElementById("login").hidden = true;
  waitingForToken = false;
  refresh();
});
document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  askForToken("token forgotten; enter an API token to see the data");
});
function fill(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map(cells => { const tr = document.createElement("tr"); tr.append(...cells.map(cell)); return tr; }));
}
async function refresh() {
  if (waitingForToken) return;
  const status = document.getElementById("status");
  try {
    const r = await fetch("graphql", { method: "POST",
                                       headers: { "Content-Type": "application/json", ...authorization() },
                                       body: JSON.stringify({ query: QUERY }) });
    if (r.status === 401 || r.status === 403) {
      const { errors } = await r.json();
      askForToken(`${errors.map(e => e.message).join("; ")}: enter an API token (a viewer's is enough)`);
      return;
    }
    const { data, errors } = await r.json();
    if (errors) throw new Error(errors.map(e => e.message).join("; "));
    fill("vens", data.vens.map(v => [v.venId, v.venName, v.registeredAt, v.lastSeenAt]));
    fill("events", data.events.map(e => [e.eventId, e.status, e.modificationNumber, e.signalName, e.startAt, e.endAt,
      e.intervals.map(i => `${i.duration}=${i.payload}`).join(", "), e.targets.venIds.join(", "),
      e.currentResponses.map(x => `${x.venId}:${x.optType}`).join(", ")]));
    status.className = ""; status.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) { status.className = "error"; status.textContent = `refresh failed: ${err.message}`; }
}
refresh(); setInterval(refresh, __REFRESH_MS__);
</script>
</body>
</html>
""".replace("__REFRESH_MS__", str(REFRESH_SECONDS * 1000))


def dashboard_router() -> APIRouter:
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(PAGE)

    return router
