"""The README's walkthrough, pasted as a new user would: its shell blocks run in order in one
interactive bash against a running stack (`adrstack up` on this run's servers, with `demo-ven-1`
and `demo-ven-2` as real openleadr VENs that report their load), while its GraphiQL subscription
runs over the websocket GraphiQL uses. Only the API's address is changed (the README's
http://localhost:8000 becomes the stack's); every other byte runs as written."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import websockets

from tests.e2e.test_spine import gql, start_ven
from tests.helpers import eventually, temp_dir
from tests.integration.api.helpers import live_subscriptions, recv, transport_ws_subscribe

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
README_API = "http://localhost:8000"
BLOCK = re.compile(r"<!-- walkthrough(?:: (\w+))? -->\n```(sh|graphql)\n(.*?)```", re.S)
STEP = "@@walkthrough-step"
# What bash says when a pasted block is broken (its own echo of the input goes to stderr too).
SHELL_TROUBLE = ("Traceback", "command not found", "syntax error", "unexpected EOF", "No such file")


def walkthrough() -> tuple[list[str], str]:
    """The shell blocks pasted in order into the second terminal, and the GraphiQL subscription."""
    found = BLOCK.findall(README.read_text())
    steps = [text for kind, lang, text in found if not kind and lang == "sh"]
    [subscription] = [text for kind, lang, text in found if kind == "graphiql" and lang == "graphql"]
    assert len(found) == len(steps) + 1, "a walkthrough marker on a block of another kind"
    return steps, subscription


def pasted(text: str, api_url: str) -> str:
    return text.replace(README_API, api_url)


def answers(output: str) -> list[dict]:
    """The JSON documents a step printed, one a line (curl's answers), in order."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_the_walkthrough_names_only_the_default_api_address_and_no_placeholder():
    steps, _ = walkthrough()
    assert len(steps) >= 7
    assert README_API in steps[0]
    for text in steps:
        # The test changes exactly this address; any other host or port would run unchanged.
        assert not re.search(r"localhost:(?!8000\b)|127\.0\.0\.1", text), text
        assert not re.search(r"<[^<]", text.replace("<<", "")), f"a placeholder in a pasted block: {text}"


async def test_the_readme_walkthrough_works_when_pasted(stack):
    steps, subscription = walkthrough()
    one, received = await start_ven(stack, "demo-ven-1", opt="optIn", report_value=120_000.0)
    two, _ = await start_ven(stack, "demo-ven-2", opt="optOut", report_value=80_000.0)
    workdir = temp_dir("walkthrough")
    host = stack.api_url.removeprefix("http://")
    try:
        # The user comes to the walkthrough with a stack that runs: the VENs report.
        async def reporting():
            return (await gql(stack, 'query($v: String!) { readings(venId: $v, limit: 1) { at } }',
                              {"v": one.ven_id}))["data"]["readings"]
        await eventually(reporting, 45, interval=0.5, message="demo-ven-1 reporting")

        async with websockets.connect(f"ws://{host}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            # Step 3, in GraphiQL: the subscription, live before the event is created.
            await transport_ws_subscribe(ws, subscription)
            await eventually(lambda: live_subscriptions(host), 15, message="the GraphiQL subscription live")

            # The second terminal: every shell block, in order, pasted into one interactive bash.
            script = "".join(f"echo {STEP}\n{pasted(text, stack.api_url)}\n" for text in steps) + "exit\n"
            shell = await asyncio.create_subprocess_exec(
                "bash", "--norc", "--noprofile", "-i", cwd=workdir, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PS1": "", "PS2": ""})
            stdout, stderr = await asyncio.wait_for(shell.communicate(script.encode()), 120)
            out, err = stdout.decode(), stderr.decode()
            assert shell.returncode == 0, (out, err)
            assert not [t for t in SHELL_TROUBLE if t in err], err
            assert '"errors"' not in out, out
            outputs = re.split(rf"^{STEP}\n", out, flags=re.M)[1:]
            assert len(outputs) == len(steps) == 7, out
            listing, helpers, created, answered, readings, events, cancelled = outputs

            # 1. The VEN list names both VENs.
            [vens] = answers(listing)
            assert {(v["venName"], v["venId"]) for v in vens["data"]["vens"]} == {
                ("demo-ven-1", one.ven_id), ("demo-ven-2", two.ven_id)}
            # 2. $VEN is demo-ven-1's id, found by its name.
            assert helpers.strip() == f"VEN={one.ven_id}"
            # 4. The event is created a minute ahead, for that VEN, and reaches it.
            [event] = answers(created)
            event = event["data"]["createEvent"]
            event_id = event["eventId"]
            assert created.strip().endswith(f"EVENT={event_id}")
            start = datetime.fromisoformat(event["startAt"])
            assert timedelta(seconds=30) < start - datetime.now(timezone.utc) < timedelta(minutes=1)
            assert event["status"] == "near"
            assert any(e["event_descriptor"]["event_id"] == event_id for e in received), received
            # 5. Its answer: demo-ven-1 opted in.
            [state] = answers(answered)
            state = state["data"]["event"]
            assert [(r["venId"], r["optType"]) for r in state["currentResponses"]] == [(one.ven_id, "optIn")]
            assert state["responseSummary"] == {"optedIn": 1, "optedOut": 0, "noResponse": 0}
            # 6. Readings of the last 10 minutes: the VEN's own, and the load of all per minute.
            own, per_minute = (a["data"]["readings"] for a in answers(readings))
            assert 0 < len(own) <= 5 and all(r["value"] == 120_000.0 and r["unit"] == "W" for r in own), own
            window = datetime.now(timezone.utc) - timedelta(minutes=10, seconds=30)
            assert all(window <= datetime.fromisoformat(r["at"]) for r in own), own
            assert per_minute and all(r["total"] > 0 for r in per_minute), per_minute
            assert max(r["series"] for r in per_minute) == 2, per_minute
            # 7. The events: the new one among the newest, and the only one of demo-ven-1 not over.
            newest, mine = (a["data"]["events"] for a in answers(events))
            assert event_id in [e["eventId"] for e in newest]
            assert [e["eventId"] for e in mine] == [event_id]
            # 8. Cancelled.
            [cancel] = answers(cancelled)
            assert cancel["data"]["cancelEvent"] == {"eventId": event_id, "status": "cancelled",
                                                     "modificationNumber": 1}

            # GraphiQL saw the answer arrive.
            async def streamed():
                message = await recv(ws)
                assert message["type"] == "next", message
                answer = message["payload"]["data"]["optResponses"]
                return answer if answer["eventId"] == event_id else None
            answer = await eventually(streamed, 15, interval=0, message="the optIn in the subscription")
            assert (answer["venId"], answer["optType"]) == (one.ven_id, "optIn")
    finally:
        await one.stop()
        await two.stop()
        shutil.rmtree(workdir, ignore_errors=True)
