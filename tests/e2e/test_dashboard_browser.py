"""The dashboard in a real browser (headless Chromium) against `adrstack up --demo 3`: an operator
creates an event from the page, the simulated VENs answer (two opt in, demo-ven-2 opts out), and
the page shows the answers, the event going active and the load dropping against its baseline,
all without a reload; then modifies and cancels it from the page. Nothing is fetched from outside
the api (no CDN), GraphiQL included. Screenshots go to test-artifacts/ (ADRSTACK_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import chromium, require_chromium
from tests.e2e.conftest import isolated_stack

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(os.environ.get("ADRSTACK_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")
EVENT_IN = 8  # seconds from the form's submission to the event's start


@pytest.fixture(scope="module")
def browser_required():
    require_chromium()


@pytest.fixture(scope="module")
def demo(infra, browser_required):
    # Readings every second, polls every second (start_stack), no automatic demo event: the test makes its own.
    with isolated_stack(infra, extra_args=["--demo", "3", "--demo-event-in", "0"],
                        env={"ADRSTACK_REPORT_INTERVAL": "1"}) as stack:
        yield stack


def shots() -> Path:
    path = ARTIFACTS / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def outside_requests(page, base: str) -> list[str]:
    urls = await page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    return [u for u in urls if not u.startswith(base) and not u.startswith("data:")]


async def test_an_event_created_in_the_dashboard_shows_responses_and_the_load_dip(demo):
    base = f"http://127.0.0.1:{demo.api_port}/"
    async with chromium() as page:
        await page.goto(base)
        await page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        await page.wait_for("document.querySelectorAll('#vens tbody tr').length === 3", 60, "3 VEN rows")
        await page.wait_for("document.querySelector('#live').textContent === 'live'", 30, "the websocket")
        names = await page.evaluate("[...document.querySelectorAll('#vens tbody tr td:nth-child(2)')].map(td => td.textContent)")
        assert sorted(names) == ["demo-ven-1", "demo-ven-2", "demo-ven-3"]
        await page.wait_for("document.querySelectorAll('#vens td.state-online').length === 3", 30, "3 VENs online")
        # Load arrives over the readings subscription: every VEN has a current load in kW.
        await page.wait_for("[...document.querySelectorAll('#vens tbody tr td:last-child')]"
                            ".every(td => / kW$/.test(td.textContent))", 30, "each VEN's load")
        await page.wait_for("document.querySelector('#aggregate-kw').dataset.kw !== ''", 30, "the aggregate load")
        # The aggregate is the sum of the VENs' loads, each shown in kW (the simulator reports W).
        loads = await page.evaluate("window.adrstackDashboard.loads()")
        assert set(loads["vens"]) == set(await page.evaluate("[...window.adrstackDashboard.state.vens.keys()]"))
        assert all(1 < kw < 1000 for kw in loads["vens"].values()), loads  # office buildings: 40-250 kW peaks
        assert loads["aggregate"] == pytest.approx(sum(loads["vens"].values()), rel=1e-9), loads
        await page.screenshot(shots() / "1-vens-and-load.png")

        # Create the event from the form: every VEN, SIMPLE level 3, starting in EVENT_IN seconds.
        event_id = await page.evaluate(f"""(async () => {{
            const form = document.querySelector('#create-event');
            form.querySelectorAll('input[name=venIds]').forEach(box => {{ box.checked = true; }});
            form.elements.level.value = '3';
            const start = new Date(Date.now() + {EVENT_IN} * 1000);
            const pad = n => String(n).padStart(2, '0');
            form.elements.start.value = `${{start.getFullYear()}}-${{pad(start.getMonth() + 1)}}-${{pad(start.getDate())}}` +
                `T${{pad(start.getHours())}}:${{pad(start.getMinutes())}}:${{pad(start.getSeconds())}}`;
            form.elements.duration.value = '10';
            form.querySelector('button[type=submit]').click();
            for (let i = 0; i < 200; i++) {{
                const result = form.querySelector('.result');
                if (result.classList.contains('error')) throw new Error(result.textContent);
                const m = /created (\\S+),/.exec(result.textContent);
                if (m) return m[1];
                await new Promise(r => setTimeout(r, 50));
            }}
            throw new Error('no answer to createEvent');
        }})()""")
        row = f"document.querySelector('#events tr[data-event-id=\"{event_id}\"]')"
        await page.wait_for(f"{row} !== null", 10, "the event's row")

        # The VENs' answers arrive over the optResponses subscription.
        answers = await page.wait_for(
            f"(() => {{ const r = {row}; if (!r) return null;"
            " const a = [...r.querySelectorAll('.responses [data-ven-id]')].map(d => d.textContent);"
            " return a.length === 3 ? a : null; })()", 30, "three answers in the event's row")
        opted = {line.split(": ")[1] for line in answers}
        assert opted == {"optIn", "optOut"}, answers
        assert sum(a.endswith("optIn") for a in answers) == 2
        await page.screenshot(shots() / "2-event-created-with-responses.png")

        # The event goes active (eventUpdates) and the aggregate drops below the baseline.
        await page.wait_for(f"{row}.querySelector('.status-active') !== null", EVENT_IN + 20, "the event to go active")
        assert await page.evaluate("document.querySelector('#focus-event').dataset.eventId") == event_id
        baseline = float(await page.wait_for("document.querySelector('#baseline-kw').dataset.kw", 20, "a baseline"))
        # Level 3 sheds 40% of the two opted-in buildings' load: wait for at least 10% of the total.
        shed = await page.wait_for(
            f"(() => {{ const s = Number(document.querySelector('#shed-kw').dataset.kw || 'NaN');"
            f" return s > 0.10 * {baseline} ? s : null; }})()", 40, "the load dip")
        assert 0 < shed < baseline
        series = await page.evaluate("""(() => { const s = window.adrstackDashboard.series();
            return { times: s.times, aggregate: s.aggregate }; })()""")
        event = await page.evaluate(f"window.adrstackDashboard.state.events.get('{event_id}')")
        start = event["startAt"]
        assert any(v is not None for v in series["aggregate"]), "the chart has an aggregate line"
        assert await page.evaluate("document.querySelector('#chart canvas') !== null")
        await page.screenshot(shots() / "3-load-dip-during-the-event.png")

        # Modify it (level 1) and cancel it, both from the page.
        await page.evaluate(f"""(() => {{
            const form = document.querySelector('#modify-event');
            form.elements.eventId.value = '{event_id}';
            form.elements.eventId.dispatchEvent(new Event('change'));
            form.elements.level.value = '1';
            form.querySelector('button[type=submit]').click();
        }})()""")
        await page.wait_for("/modified .* \\(modification 1\\)/.test(document.querySelector('#modify-event .result').textContent)",
                            15, "the modification")
        await page.wait_for(f"/level 1/.test({row}.children[2].textContent)", 10, "the new level in the row")
        await page.evaluate(f"{row}.querySelector('button[data-action=cancel]').click()")
        await page.wait_for(f"{row}.querySelector('button[data-action=cancel]').textContent === 'Really cancel?'", 5)
        await page.evaluate(f"{row}.querySelector('button[data-action=cancel]').click()")
        await page.wait_for(f"{row}.querySelector('.status-cancelled') !== null", 15, "the event cancelled")
        await page.screenshot(shots() / "4-event-cancelled.png")

        assert await page.evaluate("window.__sameDocument === true"), "the page reloaded"
        assert await outside_requests(page, base) == []
        assert page.console_errors == []
    stored = demo.graphql("query ($id: String!) { event(eventId: $id) { status modificationNumber startAt } }",
                          {"id": event_id})["data"]["event"]
    assert stored == {"status": "cancelled", "modificationNumber": 2, "startAt": start}, stored


async def test_graphiql_loads_everything_from_the_api(demo):
    base = f"http://127.0.0.1:{demo.api_port}/"
    async with chromium() as page:
        await page.goto(base + "graphql")
        # GraphiQL renders its editors only when React, GraphiQL and the explorer plugin all loaded
        # (and passed their integrity checks), and it asks the api for the schema.
        await page.wait_for("document.querySelector('.graphiql-editors') !== null", 30, "GraphiQL's editors")
        await page.wait_for("performance.getEntriesByType('resource').some(e => e.initiatorType === 'fetch' "
                            "&& new URL(e.name).pathname === '/graphql')", 30, "GraphiQL's introspection query")
        await page.screenshot(shots() / "graphiql.png")
        assert await outside_requests(page, base) == []
        assert page.console_errors == []
