"""The README, pasted as a new user would, against what the README says to run: `adrstack up
--demo 3` (on this run's servers, its VENs reporting every second, without the demo event).

- The walkthrough: its shell blocks run in order in one interactive bash while its GraphiQL
  subscription runs over the websocket GraphiQL uses. Only the API's address is changed (the
  README's http://localhost:8000 becomes the stack's); every other byte runs as written.
- Every ```graphql example, in the README's order, with the variables the README says to give it
  (`$ven` demo-ven-1's id, `$other` demo-ven-2's, ...): each answers without an error, except
  where its own comment says which error it gets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator
from unittest import mock

import httpx
import pytest
import websockets
from graphql import OperationDefinitionNode, parse

from tests.conftest import Infra
from tests.e2e.conftest import Stack, isolated_stack
from tests.helpers import eventually, temp_dir, wait_until
from tests.integration.api.helpers import live_subscriptions, recv, transport_ws_subscribe

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not (shutil.which("bash") and shutil.which("curl")),
                                 reason="the README's commands need bash and curl")]

README = Path(__file__).resolve().parents[2] / "README.md"
README_API = "http://localhost:8000"
BLOCK = re.compile(r"<!-- walkthrough(?:: (\w+))? -->\n```(sh|graphql)\n(.*?)```", re.S)
STEP = "@@walkthrough-step"
# What bash says when a pasted block is broken (its echo of the input goes to stderr too).
SHELL_TROUBLE = ("Traceback", "command not found", "syntax error", "unexpected EOF", "No such file")
EXPECTED_ERROR = re.compile(r"#\s*([A-Z_]+) while")  # e.g. "# CONFLICT while the event above runs"


@pytest.fixture(scope="module")
def demo(infra: Infra) -> Iterator[Stack]:
    """`adrstack up --demo 3`, as the README runs it, with readings every second and no demo event."""
    with contextlib.ExitStack() as stop:
        with mock.patch.dict(os.environ, {"ADRSTACK_REPORT_INTERVAL": "1"}):  # read when `up` starts
            stack = stop.enter_context(isolated_stack(infra, extra_args=["--demo", "3", "--demo-event-in", "0"]))
        yield stack


def demo_vens(stack: Stack) -> dict[str, str]:
    """venName -> venId of the three demo VENs, once all three report (as on a stack that has run
    for a while when its user opens a second terminal)."""
    def reporting():
        vens = {v["venName"]: v["venId"] for v in stack.graphql("{ vens { venId venName } }")["data"]["vens"]}
        since = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
        rows = stack.graphql('query($s: DateTime!) { readings(since: $s, bucket: "PT1M") { series } }',
                             {"s": since})["data"]["readings"]
        return vens if len(vens) == 3 and max((r["series"] for r in rows), default=0) == 3 else None
    return wait_until(reporting, timeout=45, interval=0.5, message="the three demo VENs reporting")


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
    assert len(steps) == 7
    assert README_API in steps[0] and README_API in steps[1]
    for text in steps:
        # The test changes exactly this address; any other host or port would run unchanged.
        assert not re.search(r"localhost:(?!8000\b)|127\.0\.0\.1", text), text
        assert not re.search(r"<[^<]", text.replace("<<", "")), f"a placeholder in a pasted block: {text}"


async def test_the_readme_walkthrough_works_when_pasted(demo):
    steps, subscription = walkthrough()
    vens = demo_vens(demo)
    workdir = temp_dir("walkthrough")
    host = demo.api_url.removeprefix("http://")
    try:
        async with websockets.connect(f"ws://{host}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            # Step 3, in GraphiQL: the subscription, live before the event is created.
            await transport_ws_subscribe(ws, subscription)
            await eventually(lambda: live_subscriptions(host), 15, message="the GraphiQL subscription live")

            # The second terminal: every shell block, in order, pasted into one interactive bash.
            script = "".join(f"echo {STEP}\n{pasted(text, demo.api_url)}\n" for text in steps) + "exit\n"
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
            assert len(outputs) == len(steps), out
            listing, helpers, created, answered, readings, events, cancelled = outputs

            # 1. The VEN list: the three demo VENs.
            [listed] = answers(listing)
            assert {v["venName"]: v["venId"] for v in listed["data"]["vens"]} == vens
            # 2. $VEN is demo-ven-1's id, found by its name.
            assert helpers.strip() == f"VEN={vens['demo-ven-1']}"
            # 4. The event is created a minute ahead, for that VEN.
            [event] = answers(created)
            event = event["data"]["createEvent"]
            event_id = event["eventId"]
            assert created.strip().endswith(f"EVENT={event_id}")
            created_at = demo.graphql('query($e: String!) { event(eventId: $e) { createdAt } }',
                                      {"e": event_id})["data"]["event"]["createdAt"]
            ahead = datetime.fromisoformat(event["startAt"]) - datetime.fromisoformat(created_at)
            assert timedelta(seconds=55) < ahead <= timedelta(minutes=1), ahead
            assert event["status"] == "near"
            # 5. It reached the VEN, which opted in: its answer to the event it received.
            [state] = answers(answered)
            state = state["data"]["event"]
            assert [(r["venId"], r["optType"]) for r in state["currentResponses"]] == [(vens["demo-ven-1"], "optIn")]
            assert state["responseSummary"] == {"optedIn": 1, "optedOut": 0, "noResponse": 0}
            sources = demo.graphql('query($e: String!) { event(eventId: $e) { responses { source } } }',
                                   {"e": event_id})["data"]["event"]["responses"]
            assert sources[0] == {"source": "oadrCreatedEvent"}
            assert any(f"demo-ven-1: opted in to event {event_id}" in line for line in list(demo.output))
            # 6. Readings of the last 10 minutes: the VEN's own, and the load of all, per minute.
            own, per_minute = (a["data"]["readings"] for a in answers(readings))
            assert 0 < len(own) <= 5 and all(r["value"] > 0 and r["unit"] == "W" for r in own), own
            assert {r["rId"] for r in own} == {"building-1-power"}
            window = datetime.now(timezone.utc) - timedelta(minutes=10, seconds=30)
            assert all(window <= datetime.fromisoformat(r["at"]) for r in own), own
            assert per_minute and all(r["total"] > 0 for r in per_minute), per_minute
            assert max(r["series"] for r in per_minute) == 3, per_minute
            # 7. The events: the new one among the newest, and among demo-ven-1's not over yet.
            newest, mine = (a["data"]["events"] for a in answers(events))
            assert event_id in [e["eventId"] for e in newest]
            assert event_id in [e["eventId"] for e in mine]
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
            assert (answer["venId"], answer["optType"]) == (vens["demo-ven-1"], "optIn")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_every_readme_graphql_example_runs_in_order(demo):
    vens = demo_vens(demo)
    since = (datetime.now(timezone.utc) - timedelta(minutes=10)).isoformat(timespec="seconds")
    variables = {"ven": vens["demo-ven-1"], "other": vens["demo-ven-2"], "since": since}
    ran = []
    for block in re.findall(r"```graphql\n(.*?)```", README.read_text(), re.S):
        for op in parse(block).definitions:
            assert isinstance(op, OperationDefinitionNode)
            text = block[op.loc.start:op.loc.end]
            if op.operation.value == "subscription":
                continue  # validated by the unit test; the walkthrough's runs above
            wanted = [v.variable.name.value for v in op.variable_definitions or ()]
            assert set(wanted) <= set(variables), f"{text}\nneeds {wanted}, has {sorted(variables)}"
            r = httpx.post(f"{demo.api_url}/graphql", timeout=20,
                           json={"query": text, "variables": {name: variables[name] for name in wanted}})
            result = r.json()
            comment = EXPECTED_ERROR.search(block[op.loc.end:].split("\n", 1)[0])
            codes = [e["extensions"]["code"] for e in result.get("errors") or ()]
            assert codes == ([comment.group(1)] if comment else []), f"{text}\n-> {result}"
            data = result["data"] or {}
            # The ids later examples take, from the answers of earlier ones (as a reader would).
            if "event" not in variables and (data.get("createEvent") or {}).get("eventId"):
                variables["event"] = data["createEvent"]["eventId"]
            if data.get("requestReport"):
                variables["request"] = data["requestReport"]["reportRequestId"]
            ran.append(text.split("{")[0].strip() + " " + next(iter(data), ""))
    assert len(ran) >= 20, ran


def test_the_send_event_example_works_with_the_walkthroughs_ven(demo):
    vens = demo_vens(demo)
    [block] = [b for b in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S) if "/send_event" in b]
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", pasted(block, demo.api_url)], text=True,
                            capture_output=True, timeout=30, env={**os.environ, "VEN": vens["demo-ven-1"]})
    assert result.returncode == 0, result
    event = json.loads(result.stdout)
    assert event["targets"]["ven_ids"] == [vens["demo-ven-1"]] and event["intervals"] == [
        {"duration": "PT1H", "payload": 2.0}], event
