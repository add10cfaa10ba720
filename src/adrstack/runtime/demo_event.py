"""The demo of ``adrstack up --demo N``: once the simulated VENs have registered, a one-hour
demand-response event for them is created through the API, as an operator would, so that a new
user sees the event, the opt-ins and opt-outs and the load dip without typing anything."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from .api_call import GraphQLFailed, graphql

REGISTERED = "{ vens(limit: 10000) { venId venName registrationId } }"
CREATE = """mutation Demo($input: CreateEventInput!) {
  createEvent(input: $input) { eventId status startAt }
}"""
LEVEL = 2.0  # SIMPLE "high": the simulated buildings shed a quarter of their load
DURATION = "PT1H"
MAX_RAMP_UP = 60  # seconds; a third of the delay when that is shorter, so the load is seen before the dip
REGISTRATION_TIMEOUT = 300.0


@dataclass(frozen=True)
class DemoEvent:
    event_id: str
    start: datetime
    ramp_up: int  # seconds before the start
    ven_ids: list[str]


def ramp_up_for(starts_in: float) -> int:
    return int(min(MAX_RAMP_UP, starts_in / 3))


def registered_ids(api_url: str, names: list[str], token: str | None) -> dict[str, str] | None:
    """name -> venId once every one of ``names`` is registered, else None."""
    vens = graphql(api_url, REGISTERED, token=token)["vens"]
    found = {v["venName"]: v["venId"] for v in vens if v["venName"] in names and v.get("registrationId")}
    return found if len(found) == len(names) else None


def create(api_url: str, ven_ids: list[str], start: datetime, ramp_up: int, token: str | None) -> DemoEvent:
    event = {"venIds": ven_ids, "startAt": start.isoformat(), "intervals": [{"duration": DURATION, "payload": LEVEL}],
             "vtnComment": "adrstack up --demo: a one-hour demonstration event"}
    if ramp_up:
        event["rampUp"] = f"PT{ramp_up}S"
    data = graphql(api_url, CREATE, {"input": event}, token=token)
    return DemoEvent(data["createEvent"]["eventId"], start, ramp_up, ven_ids)


async def schedule(api_url: str, names: list[str], starts_in: float, say: Callable[[str], None],
                   token: str | None = None, timeout: float = REGISTRATION_TIMEOUT) -> DemoEvent | None:
    """Wait for ``names`` to register, then create the event ``starts_in`` seconds later. Never
    raises (but for cancellation): the stack runs on without a demo event, and says why."""
    deadline = time.monotonic() + timeout
    ids = None
    try:
        while ids is None:
            # urllib blocks; a worker thread is fine here because it spawns nothing.
            ids = await asyncio.to_thread(registered_ids, api_url, names, token)
            if ids is None:
                if time.monotonic() >= deadline:
                    say(f"the demo VENs did not all register within {timeout:.0f}s; no demo event")
                    return None
                await asyncio.sleep(0.5)
        start = (datetime.now(timezone.utc) + timedelta(seconds=starts_in)).replace(microsecond=0)
        event = await asyncio.to_thread(create, api_url, [ids[n] for n in names], start, ramp_up_for(starts_in),
                                        token)
    except (GraphQLFailed, KeyError, TypeError) as e:  # TypeError, KeyError: an answer of another shape
        say(f"could not schedule the demo event: {type(e).__name__}: {e}")
        return None
    local = event.start.astimezone()
    say(f"demo event {event.event_id} scheduled for {len(names)} VEN(s): SIMPLE level {LEVEL:g} for one hour "
        f"from {local.strftime('%H:%M:%S %Z')} (in {starts_in:.0f}s, ramping in over {event.ramp_up}s before); "
        "watch the opt-ins and the load on the dashboard")
    return event
