"""The dashboard with API tokens on, in headless Chromium against ``python -m adrstack.api``: it
asks for a token, shows the VENs (and their groups) and a program once given a viewer's, goes live
over the websocket with it (a VEN's new status shows when its fact is pushed), shows the api's
refusal when a viewer tries to create an event, and forgets the token."""

from __future__ import annotations

import asyncio
import sys

from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from adrstack.shared.messages import ReportStatus, ResourceStatus
from adrstack.shared.tables import VenStatusLatestRow

from adrstack.runtime.ports import free_port
from tests.browser import chromium, require_chromium
from tests.helpers import eventually, stack_env, stop_process


@pytest.fixture
async def secure_api(api_settings, known):
    require_chromium()
    port = free_port()
    env = stack_env(api_settings, ADRSTACK_API_HOST="127.0.0.1", ADRSTACK_API_PORT=str(port),
                    ADRSTACK_API_AUTH="true")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "adrstack.api", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async def healthy() -> bool:
            assert proc.returncode is None, "the API exited early"
            try:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"http://127.0.0.1:{port}/health")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(healthy, timeout=30, interval=0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        await stop_process(proc)


PROGRAM = """mutation { createProgram(input: { programId: "evening-peak",
  marketContext: "http://utility.example/programs/evening-peak", level: 2, groupIds: ["north"],
  schedule: { timeZone: "Europe/Paris", rules: [{ days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
              start: "17:00", end: "20:00" }] } }) { upcoming(limit: 3) { startAt endAt } } }"""


async def test_the_dashboard_asks_for_a_token_and_shows_refusals(secure_api, tokens, engine, nc, api_settings):
    async with httpx.AsyncClient() as c:
        created = (await c.post(secure_api + "graphql", json={"query": PROGRAM},
                                headers={"Authorization": f"Bearer {tokens['operator']}"})).json()
    upcoming = created["data"]["createProgram"]["upcoming"]
    async with chromium() as page:
        await page.goto(secure_api)
        await page.wait_for("!document.querySelector('#login').hidden", 15, "the token form")
        status = await page.evaluate("document.querySelector('#status').textContent")
        assert "API token" in status, status
        assert await page.evaluate("document.querySelectorAll('#vens tbody tr').length") == 0

        await page.evaluate(f"""(() => {{ document.querySelector('#token').value = '{tokens["viewer"]}';
            document.querySelector('#login button').click(); }})()""")
        await page.wait_for("document.querySelector('#live').textContent === 'live'", 15, "the websocket, with the token")
        await page.wait_for("document.querySelectorAll('#vens tbody tr').length === 2", 15, "the two VENs")
        groups = await page.evaluate("""Object.fromEntries([...document.querySelectorAll('#vens tbody tr')]
            .map(tr => [tr.dataset.venId, tr.children[4].textContent]))""")
        assert groups == {"ven-a": "", "ven-b": "north"}
        assert await page.evaluate("sessionStorage.getItem('adrstack-api-token')") == tokens["viewer"]
        # The program, its enrolled group and its next three windows, in the browser's time zone.
        program = await page.evaluate("""(() => { const tr = document.querySelector('#programs tr[data-program-id="evening-peak"]');
            return tr && [...tr.children].map(td => td.innerText); })()""")
        assert program[0] == "evening-peak" and program[2] == "group north" and program[3] == "SIMPLE 2"
        shown = await page.evaluate(f"""{[[o["startAt"], o["endAt"]] for o in upcoming]!r}.map(([a, b]) =>
            `${{new Intl.DateTimeFormat(undefined, {{ dateStyle: "short", timeStyle: "medium" }}).format(new Date(a))}} – ` +
            `${{new Intl.DateTimeFormat(undefined, {{ dateStyle: "short", timeStyle: "medium" }}).format(new Date(b))}}`).join("\\n")""")
        assert program[4] == shown and len(upcoming) == 3

        # A VEN's new resource status: the fact is pushed (venActivity), the page reads the status.
        at = datetime.now(timezone.utc).replace(microsecond=0)
        async with AsyncSession(engine) as session:
            session.add(VenStatusLatestRow(ven_id="ven-a", resource_key="", report_specifier_id="status-1", r_id="st-1",
                                           at=at, online=False, manual_override=True, load_control={}, received_at=at))
            await session.commit()
        fact = ReportStatus(ven_id="ven-a", report_specifier_id="status-1",
                            statuses=[ResourceStatus(r_id="st-1", at=at, online=False, manual_override=True)])
        await nc.publish(api_settings.subjects.report_status("ven-a"), fact.to_bytes())
        status = await page.wait_for("(() => { const td = document.querySelector('#vens tr[data-ven-id=\"ven-a\"]').children[5];"
                                     " return td.textContent !== '–' && td.textContent; })()", 15, "ven-a's status")
        assert status.startswith("offline, manual override ("), status

        # A viewer may watch, not act: the api's refusal is shown under the form.
        await page.evaluate("""(() => { const f = document.querySelector('#create-event');
            f.querySelector('input[value="ven-a"]').checked = true;
            f.querySelector('button[type=submit]').click(); })()""")
        refusal = await page.wait_for("(() => { const r = document.querySelector('#create-event .result');"
                                      " return r.classList.contains('error') && r.textContent; })()", 15, "the refusal")
        assert "operator" in refusal, refusal
        assert await page.evaluate("document.querySelector('#login').hidden"), "a refusal is not a bad token"
        assert await page.evaluate("document.querySelector('#live').textContent") == "live"

        await page.evaluate("document.querySelector('#forget').click()")
        await page.wait_for("!document.querySelector('#login').hidden", 5, "the token form again")
        assert await page.evaluate("sessionStorage.getItem('adrstack-api-token')") is None
        # The browser logs the refused mutation's 403 itself; nothing else went wrong.
        assert [e for e in page.console_errors if "status of 403" not in e] == []
