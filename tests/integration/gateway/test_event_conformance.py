"""The 2.0b EiEvent rules of ../shared/openadr-2.0b-vtn-rules.md that apply to a pull VTN, checked
on the VEN's side of the wire: the bytes the gateway answers to oadrPoll, oadrRequestEvent and
oadrCreatedEvent, POSTed as a registered VEN and read with lxml (openleadr's parsed dicts hide
schemaLocation, uids, requestIDs and element placement). Rules already checked by a test that
names them elsewhere are mapped in docs/conformance.md rather than checked twice.

Events are written to the events bucket as the scheduler writes them (``put_event``), except in
the rule 4/5 test, which runs a real scheduler beside the gateway.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import aiohttp
import nats
from lxml import etree
from nats.errors import NoRespondersError
from openleadr.messaging import create_message, parse_message
from openleadr.utils import parse_datetime, parse_duration

from adrstack.scheduler.service import Scheduler
from adrstack.scheduler.settings import SchedulerSettings
from adrstack.shared.messages import EventBaseline, EventInterval, EventStatus, EventTargets, SignalSpec, utcnow
from adrstack.shared.signals import SignalUnits
from tests.helpers import eventually

from .test_events import make_event, put_event, registered

# The 2.0b namespaces, written out here rather than taken from the gateway's codec.
NS = {
    "oadr": "http://openadr.org/oadr-2.0b/2012/07",
    "ei": "http://docs.oasis-open.org/ns/energyinterop/201110",
    "pyld": "http://docs.oasis-open.org/ns/energyinterop/201110/payloads",
    "emix": "http://docs.oasis-open.org/ns/emix/2011/06",
    "xcal": "urn:ietf:params:xml:ns:icalendar-2.0",
    "strm": "urn:ietf:params:xml:ns:icalendar-2.0:stream",
    "power": "http://docs.oasis-open.org/ns/emix/2011/06/power",
}
EVENT_STATUSES = {"none", "far", "near", "active", "completed", "cancelled"}


# --------------------------------------------------------------------------- the wire


async def post_raw(gateway, service: str, body: str | bytes) -> bytes:
    """POST ``body`` to the gateway's ``service`` endpoint; the answer's bytes (HTTP 200, XML)."""
    data = body.encode() if isinstance(body, str) else body
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gateway.vtn_url}/{service}", data=data,
                          headers={"Content-Type": "application/xml"}) as r:
            raw = await r.read()
            assert r.status == 200, (r.status, raw[:300])
            assert r.content_type == "application/xml"
            return raw


def message_of(raw: bytes) -> etree._Element:
    """The message element inside oadrPayload/oadrSignedObject."""
    root = etree.fromstring(raw)
    assert root.tag == f"{{{NS['oadr']}}}oadrPayload", root.tag
    [signed] = root.findall("oadr:oadrSignedObject", NS)
    [message] = list(signed)
    return message


def kind(message: etree._Element) -> str:
    return etree.QName(message).localname


def code(message: etree._Element) -> int:
    """The message's own eiResponse code (not an eventResponse's)."""
    [c] = message.xpath("(./ei:eiResponse | ./pyld:eiCreatedEvent/ei:eiResponse)/ei:responseCode", namespaces=NS)
    return int(c.text)


def text(element: etree._Element, path: str) -> str | None:
    found = element.find(path, NS)
    return None if found is None else found.text


async def send(gateway, service: str, body: str) -> etree._Element:
    return message_of(await post_raw(gateway, service, body))


def poll(ven_id: str) -> str:
    return create_message("oadrPoll", ven_id=ven_id)


def request_event(ven_id: str, request_id: str = "req-ev", reply_limit: int | None = None) -> str:
    return create_message("oadrRequestEvent", request_id=request_id, ven_id=ven_id, reply_limit=reply_limit)


def created_event(ven_id: str, *answers: dict, request_id: str = "") -> str:
    """oadrCreatedEvent; each answer: event_id, opt_type, and optionally modification_number,
    response_code, request_id. (openleadr writes the eiResponse's requestID empty whenever there are
    eventResponses; ``request_id`` puts one in.)"""
    body = create_message(
        "oadrCreatedEvent", ven_id=ven_id,
        response={"response_code": 200, "response_description": "OK", "request_id": request_id},
        event_responses=[{"response_code": a.get("response_code", 200), "response_description": "OK",
                          "request_id": a.get("request_id", "req-ans"), "event_id": a["event_id"],
                          "modification_number": a.get("modification_number", 0), "opt_type": a["opt_type"]}
                         for a in answers])
    if request_id:
        body = body.replace("<ei:eiResponse><ei:responseCode>200</ei:responseCode><ei:responseDescription>OK"
                            "</ei:responseDescription><requestID xmlns=\"http://docs.oasis-open.org/ns/"
                            "energyinterop/201110/payloads\"></requestID>",
                            "<ei:eiResponse><ei:responseCode>200</ei:responseCode><ei:responseDescription>OK"
                            "</ei:responseDescription><requestID xmlns=\"http://docs.oasis-open.org/ns/"
                            f"energyinterop/201110/payloads\">{request_id}</requestID>", 1)
        assert f">{request_id}</requestID>" in body
    return body


def oadr_events(message: etree._Element) -> list[etree._Element]:
    return message.findall("oadr:oadrEvent", NS)


def event_id(oadr_event: etree._Element) -> str:
    return text(oadr_event, "ei:eiEvent/ei:eventDescriptor/ei:eventID")


def ids(message: etree._Element) -> list[str]:
    return [event_id(e) for e in oadr_events(message)]


def by_id(message: etree._Element) -> dict[str, etree._Element]:
    return {event_id(e): e for e in oadr_events(message)}


def descriptor(oadr_event: etree._Element, field: str) -> str | None:
    return text(oadr_event, f"ei:eiEvent/ei:eventDescriptor/ei:{field}")


def modification(oadr_event: etree._Element) -> int:
    return int(descriptor(oadr_event, "modificationNumber"))


def status(oadr_event: etree._Element) -> str:
    return descriptor(oadr_event, "eventStatus")


def signals(oadr_event: etree._Element) -> list[etree._Element]:
    return oadr_event.findall("ei:eiEvent/ei:eiEventSignals/ei:eiEventSignal", NS)


def intervals(signal: etree._Element) -> list[etree._Element]:
    return signal.findall("strm:intervals/ei:interval", NS)


def payloads(signal: etree._Element) -> list[float]:
    return [float(v) for v in signal.xpath("strm:intervals/ei:interval/ei:signalPayload/ei:payloadFloat/ei:value/text()",
                                           namespaces=NS)]


def current_value(signal: etree._Element) -> float:
    return float(text(signal, "ei:currentValue/ei:payloadFloat/ei:value"))


def active_duration(oadr_event: etree._Element) -> timedelta:
    return parse_duration(text(oadr_event, "ei:eiEvent/ei:eiActivePeriod/xcal:properties/xcal:duration/xcal:duration"))


async def distribution_raw(gateway, ven_id: str, accept=lambda m: True, timeout: float = 10.0) -> bytes:
    """Poll as ``ven_id`` until an oadrDistributeEvent that ``accept`` takes comes back; its bytes."""

    async def probe():
        raw = await post_raw(gateway, "OadrPoll", poll(ven_id))
        message = message_of(raw)
        return raw if kind(message) == "oadrDistributeEvent" and accept(message) else None

    return await eventually(probe, timeout, message="oadrDistributeEvent on poll")


async def distribution(gateway, ven_id: str, accept=lambda m: True, timeout: float = 10.0) -> etree._Element:
    return message_of(await distribution_raw(gateway, ven_id, accept, timeout))


def holding(*event_ids: str):
    return lambda message: sorted(ids(message)) == sorted(event_ids)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# --------------------------------------------------------------------------- signals and intervals


async def test_rule_2_interval_uids_count_from_0_in_every_signal_and_each_interval_is_well_formed(gateway, bus, vens):
    """Rule 2 (interval uid 0..n-1 within each eiEventSignal), on a multi-interval, multi-signal
    event, with the [QL] checks of the same structure: no dtstart in any interval, exactly one
    payloadFloat per interval, signalID unique within the event, eiNotification (and rampUp,
    recovery) under the activePeriod's properties and nowhere else."""
    client = await registered(vens, "conf-uid-ven", gateway.vtn_url)
    price = SignalSpec(signal_name="ELECTRICITY_PRICE", signal_type="price", signal_id="signal-2",
                       intervals=[EventInterval(duration=minutes(15), payload=0.2) for _ in range(6)])
    dispatch = SignalSpec(signal_name="LOAD_DISPATCH", signal_type="setpoint", signal_id="signal-3",
                          intervals=[EventInterval(duration=minutes(90), payload=-40.5)])
    await put_event(bus, make_event("conf-uid-1", [client.ven_id],
                                    intervals=[EventInterval(duration=minutes(30), payload=1),
                                               EventInterval(duration=minutes(30), payload=3),
                                               EventInterval(duration=minutes(30), payload=2)],
                                    extra_signals=[price, dispatch]))
    [event] = oadr_events(await distribution(gateway, client.ven_id))

    found = signals(event)
    assert [text(s, "ei:signalID") for s in found] == ["signal-1", "signal-2", "signal-3"]
    assert len({text(s, "ei:signalID") for s in found}) == len(found)
    for signal in found:
        uids = [text(i, "xcal:uid/xcal:text") for i in intervals(signal)]
        assert uids == [str(n) for n in range(len(uids))], uids
    assert [len(intervals(s)) for s in found] == [3, 6, 1]
    for interval in event.iterfind(".//ei:interval", NS):
        assert interval.find(".//xcal:dtstart", NS) is None
        assert len(interval.findall("ei:signalPayload/ei:payloadFloat", NS)) == 1
        assert len(interval.findall(".//ei:payloadFloat", NS)) == 1
    properties = event.find("ei:eiEvent/ei:eiActivePeriod/xcal:properties", NS)
    assert parse_duration(text(properties, "ei:x-eiNotification/xcal:duration")) == timedelta(hours=2)
    assert parse_duration(text(properties, "ei:x-eiRampUp/xcal:duration")) == minutes(10)
    assert parse_duration(text(properties, "ei:x-eiRecovery/xcal:duration")) == minutes(5)
    for tag in ("x-eiNotification", "x-eiRampUp", "x-eiRecovery"):
        [only] = event.iterfind(f".//ei:{tag}", NS)
        assert only.getparent() is properties


async def test_rule_7_each_signal_type_fits_its_signal_name(gateway, bus, vens):
    """Rule 7 (signalType valid for the signalName) for the E1_1020/1025/1040 configurations: a
    SIMPLE level, an ELECTRICITY_PRICE price and a LOAD_DISPATCH setpoint go out with exactly the
    name/type pair they were created with. (Units/itemBase, the rest of rule 7 and of E1_1020/1025/
    1027, are not checked here.)"""
    client = await registered(vens, "conf-type-ven", gateway.vtn_url)
    hour = [EventInterval(duration=timedelta(hours=1), payload=1)]
    await put_event(bus, make_event("conf-simple", [client.ven_id], intervals=hour))
    await put_event(bus, make_event("conf-price", [client.ven_id], signal_name="ELECTRICITY_PRICE",
                                    signal_type="price", intervals=[EventInterval(duration=timedelta(hours=1),
                                                                                  payload=0.31)]))
    await put_event(bus, make_event("conf-setpoint", [client.ven_id], signal_name="LOAD_DISPATCH",
                                    signal_type="setpoint", intervals=[EventInterval(duration=timedelta(hours=1),
                                                                                     payload=25.0)]))
    message = await distribution(gateway, client.ven_id, holding("conf-simple", "conf-price", "conf-setpoint"))
    pairs = {eid: [(text(s, "ei:signalName"), text(s, "ei:signalType")) for s in signals(e)]
             for eid, e in by_id(message).items()}
    assert pairs == {"conf-simple": [("SIMPLE", "level")], "conf-price": [("ELECTRICITY_PRICE", "price")],
                     "conf-setpoint": [("LOAD_DISPATCH", "setpoint")]}


async def test_rule_8_every_signals_intervals_add_up_to_the_active_period(gateway, bus, vens):
    """Rule 8: the interval durations of every signal sum to the activePeriod duration — for
    signals cut differently (4 x 15 min, 1 x 60 min, 20 + 40 min) and for an open-ended event
    (rule 47: a single PT0S interval under an activePeriod of PT0S)."""
    client = await registered(vens, "conf-sum-ven", gateway.vtn_url)
    quarter = SignalSpec(signal_name="ELECTRICITY_PRICE", signal_type="price", signal_id="signal-2",
                         intervals=[EventInterval(duration=minutes(15), payload=0.1 * n) for n in range(4)])
    whole = SignalSpec(signal_name="LOAD_DISPATCH", signal_type="setpoint", signal_id="signal-3",
                       intervals=[EventInterval(duration=minutes(60), payload=10)])
    await put_event(bus, make_event("conf-sum-1", [client.ven_id], extra_signals=[quarter, whole],
                                    intervals=[EventInterval(duration=minutes(20), payload=1),
                                               EventInterval(duration=minutes(40), payload=2)]))
    await put_event(bus, make_event("conf-sum-open", [client.ven_id], start_at=utcnow() + timedelta(hours=6),
                                    intervals=[EventInterval(duration=timedelta(0), payload=1)]))
    message = await distribution(gateway, client.ven_id, holding("conf-sum-1", "conf-sum-open"))
    events = by_id(message)
    assert active_duration(events["conf-sum-1"]) == minutes(60)
    assert active_duration(events["conf-sum-open"]) == timedelta(0)
    for event in events.values():
        total = active_duration(event)
        for signal in signals(event):
            durations = [parse_duration(text(i, "xcal:duration/xcal:duration")) for i in intervals(signal)]
            assert sum(durations, timedelta(0)) == total, (event_id(event), text(signal, "ei:signalID"), durations)


async def test_e1_1027_a_price_event_with_a_baseline(gateway, bus, vens):
    """E1_1027 and the [QL] baseline row: an ELECTRICITY_PRICE event with an eiEventBaseline, whose
    interval durations add up to its duration, with uids 0..n-1, no dtstart in the intervals, its
    resourceID and units (powerReal, kW); openleadr reads it."""
    client = await registered(vens, "conf-baseline-ven", gateway.vtn_url)
    start = utcnow().replace(microsecond=0) + timedelta(hours=2)
    baseline = EventBaseline(baseline_id="bl-1", baseline_name="10-day average", start_at=start,
                             intervals=[EventInterval(duration=minutes(30), payload=120),
                                        EventInterval(duration=minutes(15), payload=130),
                                        EventInterval(duration=minutes(15), payload=125)],
                             resource_ids=["meter-1"], units=SignalUnits(kind="powerReal", unit="W", scale="k"))
    await put_event(bus, make_event("conf-baseline", [client.ven_id], signal_name="ELECTRICITY_PRICE",
                                    signal_type="price", units=SignalUnits(kind="currencyPerKWh", unit="USD"),
                                    start_at=start, intervals=[EventInterval(duration=minutes(60), payload=0.4)],
                                    baseline=baseline))
    raw = await distribution_raw(gateway, client.ven_id, holding("conf-baseline"))
    [event] = oadr_events(message_of(raw))
    [sent] = event.findall(".//ei:eiEventBaseline", NS)
    assert text(sent, "ei:baselineID") == "bl-1" and text(sent, "ei:baselineName") == "10-day average"
    assert text(sent, "ei:resourceID") == "meter-1"
    assert parse_datetime(text(sent, "xcal:dtstart/xcal:date-time")) == start
    total = parse_duration(text(sent, "xcal:duration/xcal:duration"))
    parts = sent.findall("strm:intervals/ei:interval", NS)
    assert [parse_duration(text(i, "xcal:duration/xcal:duration")) for i in parts] == [minutes(30), minutes(15),
                                                                                     minutes(15)]
    assert total == minutes(60) and [text(i, "xcal:uid/xcal:text") for i in parts] == ["0", "1", "2"]
    assert all(i.find("xcal:dtstart", NS) is None for i in parts)
    assert sent.find("power:powerReal", NS) is not None
    _, payload = parse_message(raw.decode())  # openleadr validates it against the 2.0b schema too
    assert payload["events"][0]["event_signals"]["event_baseline"]["baseline_id"] == "bl-1"


async def test_rule_9_simple_payloads_on_the_wire_are_0_to_3(gateway, bus, vens):
    """Rule 9: SIMPLE payloads (and currentValue) are in {0, 1, 2, 3}. The scheduler refuses other
    levels (tests/integration/scheduler/test_commands.py::test_a_simple_level_of_5_is_refused_and_
    nothing_stored); an event that reached the bucket with one anyway is not delivered, while the
    VEN's other events are, and a price of 5.5 is not a SIMPLE level."""
    client = await registered(vens, "conf-levels-ven", gateway.vtn_url)
    now = utcnow().replace(microsecond=0)
    await put_event(bus, make_event("conf-levels", [client.ven_id], status=EventStatus.ACTIVE, priority=1,
                                    start_at=now - minutes(45),
                                    intervals=[EventInterval(duration=minutes(15), payload=p) for p in (0, 1, 2, 3)]))
    await put_event(bus, make_event("conf-level-5", [client.ven_id],
                                    intervals=[EventInterval(duration=minutes(30), payload=5)]))
    await put_event(bus, make_event("conf-level-half", [client.ven_id],
                                    intervals=[EventInterval(duration=minutes(30), payload=1.5)]))
    await put_event(bus, make_event("conf-price-5", [client.ven_id], signal_name="ELECTRICITY_PRICE",
                                    signal_type="price", intervals=[EventInterval(duration=minutes(30), payload=5.5)]))
    message = await distribution(gateway, client.ven_id, holding("conf-levels", "conf-price-5"))
    events = by_id(message)
    [levels] = signals(events["conf-levels"])
    assert payloads(levels) == [0.0, 1.0, 2.0, 3.0]
    assert current_value(levels) == 3.0  # 45 minutes in: the fourth quarter hour
    for event in oadr_events(message):
        for signal in signals(event):
            if text(signal, "ei:signalName") == "SIMPLE":
                assert set(payloads(signal)) <= {0.0, 1.0, 2.0, 3.0}
                assert current_value(signal) in {0.0, 1.0, 2.0, 3.0}
    assert payloads(signals(events["conf-price-5"])[0]) == [5.5]


# --------------------------------------------------------------------------- modification numbers


class _Commands:
    """Core-NATS requests to the scheduler, as the api sends them."""

    def __init__(self, nc, subjects):
        self.nc = nc
        self.subjects = subjects

    async def __call__(self, verb: str, body: dict) -> dict:
        deadline = time.monotonic() + 5
        while True:
            try:
                msg = await self.nc.request(self.subjects.cmd_event(verb), json.dumps(body, default=str).encode(),
                                            timeout=10)
                reply = json.loads(msg.data)
                assert reply["ok"], reply
                return reply["event"]
            except NoRespondersError:
                # nats-server 2.9 now and then answers "no responders" right after the scheduler
                # subscribed (see tests/integration/scheduler/conftest.py): retried briefly.
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


async def test_rules_4_and_5_modification_numbers_through_the_scheduler(isolated_settings, gateway, bus, vens):
    """Rule 4 (a new event has modificationNumber 0) and rule 5 (each change — dtstart, duration, the
    last interval's payload, cancellation — increments it by exactly 1 and re-sends the event; the
    far/near -> active transition does not increment it and sends nothing more), with a real
    scheduler beside the gateway: E1_1030 (modify event). The scheduler's own tests check the
    numbers it stores (tests/integration/scheduler/test_commands.py::test_modify_then_cancel)."""
    scheduler = Scheduler(SchedulerSettings(**isolated_settings.model_dump()))
    await scheduler.start()
    nc = await nats.connect(isolated_settings.nats_url)
    try:
        command = _Commands(nc, isolated_settings.subjects)
        client = await registered(vens, "conf-mod-ven", gateway.vtn_url)
        ven = client.ven_id
        start = utcnow().replace(microsecond=0) + timedelta(hours=2)
        half_hours = [{"duration": "PT30M", "payload": 1}, {"duration": "PT30M", "payload": 2}]
        created = await command("create", {"event_id": "conf-mod-1", "ven_ids": [ven], "start_at": start.isoformat(),
                                           "intervals": half_hours})
        assert created["modification_number"] == 0

        async def next_version(number: int, once: bool = True) -> etree._Element:
            message = await distribution(gateway, ven, lambda m: "conf-mod-1" in ids(m)
                                         and modification(by_id(m)["conf-mod-1"]) >= number)
            event = by_id(message)["conf-mod-1"]
            assert modification(event) == number  # exactly +1: no version skipped
            if once:
                assert kind(await send(gateway, "OadrPoll", poll(ven))) == "oadrResponse"  # sent once
            return event

        event = await next_version(0)  # rule 4
        assert status(event) == "far"

        later = start + timedelta(hours=1)
        await command("modify", {"event_id": "conf-mod-1", "start_at": later.isoformat()})
        event = await next_version(1)
        assert parse_datetime(text(event, "ei:eiEvent/ei:eiActivePeriod/xcal:properties/xcal:dtstart/xcal:date-time")) \
            == later

        await command("modify", {"event_id": "conf-mod-1", "intervals": [{"duration": "PT45M", "payload": 1},
                                                                        {"duration": "PT30M", "payload": 2}]})
        event = await next_version(2)
        assert active_duration(event) == minutes(75)

        await command("modify", {"event_id": "conf-mod-1", "intervals": [{"duration": "PT45M", "payload": 1},
                                                                        {"duration": "PT30M", "payload": 3}]})
        event = await next_version(3)
        assert payloads(signals(event)[0]) == [1.0, 3.0]

        # Moved to start in a few seconds: a change (4), then the clock makes it active — no change.
        soon = utcnow().replace(microsecond=0) + timedelta(seconds=4)
        await command("modify", {"event_id": "conf-mod-1", "start_at": soon.isoformat()})
        event = await next_version(4, once=False)  # (the clock may make it active before another poll)
        message = await distribution(gateway, ven, lambda m: status(by_id(m)["conf-mod-1"]) == "active", timeout=15)
        assert modification(by_id(message)["conf-mod-1"]) == 4

        async def scheduler_fired():
            stored = await bus.kv_json("event.conf-mod-1", bucket="events")
            return stored if stored and stored["status"] == "active" else None

        stored = await eventually(scheduler_fired, 10, message="the scheduler's active transition stored")
        assert stored["modification_number"] == 4
        # The scheduler's write of the transition is not a change for the VEN: nothing is re-sent.
        await eventually(lambda: (e := gateway.events.get("conf-mod-1")) is not None
                         and e.status == EventStatus.ACTIVE, 5, message="the gateway saw the transition")
        assert kind(await send(gateway, "OadrPoll", poll(ven))) == "oadrResponse"

        cancelled = await command("cancel", {"event_id": "conf-mod-1"})
        assert cancelled["modification_number"] == 5
        message = await distribution(gateway, ven, lambda m: modification(by_id(m)["conf-mod-1"]) == 5)
        assert status(by_id(message)["conf-mod-1"]) == "cancelled"
    finally:
        await nc.close()
        await scheduler.stop()


async def test_rule_5_a_clock_transition_keeps_the_modification_number(gateway, bus, vens):
    """Rule 5, its last clause, for an event stored by the scheduler at modificationNumber 3 with
    status far: when the clock makes it active the VEN is sent it again (rule 50: its status
    changed) at modificationNumber 3, and once."""
    client = await registered(vens, "conf-clock-ven", gateway.vtn_url)
    start = utcnow().replace(microsecond=0) + timedelta(seconds=2)
    await put_event(bus, make_event("conf-clock-1", [client.ven_id], modification_number=3, start_at=start,
                                    randomization=None))
    message = await distribution(gateway, client.ven_id)
    assert status(by_id(message)["conf-clock-1"]) in ("far", "near")
    message = await distribution(gateway, client.ven_id, lambda m: status(by_id(m)["conf-clock-1"]) == "active")
    assert modification(by_id(message)["conf-clock-1"]) == 3
    assert kind(await send(gateway, "OadrPoll", poll(client.ven_id))) == "oadrResponse"


# --------------------------------------------------------------------------- what a distribution holds


async def test_rule_15_active_events_first_by_priority_then_start_others_by_start_and_ended_ones_last(
        gateway, bus, vens):
    """Rule 15: in the payload, active events come first (by priority, 1 highest and 0 none last,
    then by dtstart), then the others by dtstart, and completed events last — a cancelled event is
    over too and goes with them. Checked on the distributions that carry a cancellation and a
    completion among pending events; [QL]: eventIDs are unique in the payload."""
    client = await registered(vens, "conf-order-ven", gateway.vtn_url)
    now = utcnow().replace(microsecond=0)
    hour = [EventInterval(duration=timedelta(hours=2), payload=1)]
    events = {
        "conf-act-p2": dict(status=EventStatus.ACTIVE, priority=2, start_at=now - minutes(30)),
        "conf-act-p1-late": dict(status=EventStatus.ACTIVE, priority=1, start_at=now - minutes(10)),
        "conf-act-p1-early": dict(status=EventStatus.ACTIVE, priority=1, start_at=now - minutes(20)),
        "conf-act-p0": dict(status=EventStatus.ACTIVE, priority=0, start_at=now - minutes(40)),
        "conf-far": dict(status=EventStatus.FAR, priority=1, start_at=now + timedelta(hours=3)),
        "conf-near": dict(status=EventStatus.NEAR, priority=3, start_at=now + minutes(3)),
        "conf-to-cancel": dict(status=EventStatus.ACTIVE, priority=1, start_at=now - minutes(50),
                               response_required="never"),
    }
    for eid, fields in events.items():
        await put_event(bus, make_event(eid, [client.ven_id], intervals=hour, randomization=None, **fields))
    # Active for a few seconds from a start before everything else's: ends by the clock.
    await put_event(bus, make_event("conf-ending", [client.ven_id], status=EventStatus.ACTIVE, priority=1,
                                    start_at=now - timedelta(hours=1), randomization=None,
                                    intervals=[EventInterval(duration=timedelta(hours=1, seconds=6), payload=1)]))
    expected_pending = ["conf-act-p1-early", "conf-act-p1-late", "conf-act-p2", "conf-act-p0",
                        "conf-near", "conf-far"]

    message = await distribution(gateway, client.ven_id, lambda m: len(ids(m)) == 8)
    assert ids(message) == ["conf-ending", "conf-to-cancel", *expected_pending]  # all active: priority 1, by start
    assert len(set(ids(message))) == len(ids(message))

    await put_event(bus, make_event("conf-to-cancel", [client.ven_id], modification_number=1, intervals=hour,
                                    randomization=None, **{**events["conf-to-cancel"], "status": EventStatus.CANCELLED}))
    message = await distribution(gateway, client.ven_id, lambda m: "conf-to-cancel" in ids(m)
                                 and status(by_id(m)["conf-to-cancel"]) == "cancelled")
    if status(by_id(message)["conf-ending"]) == "completed":
        # A slow machine: it ended before this poll. Both over: last, by start.
        assert ids(message) == [*expected_pending, "conf-ending", "conf-to-cancel"]
        return
    assert ids(message) == ["conf-ending", *expected_pending, "conf-to-cancel"]

    message = await distribution(gateway, client.ven_id, lambda m: "conf-ending" in ids(m)
                                 and status(by_id(m)["conf-ending"]) == "completed", timeout=20)
    assert ids(message) == [*expected_pending, "conf-ending"]
    assert len(set(ids(message))) == len(ids(message))


async def test_ql_a_distribution_is_well_formed_and_names_only_its_ven(gateway, bus, vens):
    """The [QL] rows on an oadrDistributeEvent: eiResponse present with 200; schemaVersion "2.0b";
    eventStatus a valid value; createdDateTime of a new event within 5 minutes of now; the
    configured marketContext; at most one venID in eiTarget (the receiving VEN's; the other
    VENs targeted are not disclosed); several targets rendered — two resourceIDs, a groupID, a
    partyID beside the venID (E1_1020 two resources, A_E3_0435)."""
    client = await registered(vens, "conf-target-ven", gateway.vtn_url)
    other = await registered(vens, "conf-target-other", gateway.vtn_url)
    targets = EventTargets(ven_ids=[client.ven_id, other.ven_id], resource_ids=["meter-1", "meter-2"],
                           group_ids=["group-east"], party_ids=["party-9"])
    await put_event(bus, make_event("conf-targets", [], targets=targets, market_context="http://market.example/conf"))
    message = await distribution(gateway, client.ven_id)
    assert message.get(f"{{{NS['ei']}}}schemaVersion") == "2.0b"
    assert code(message) == 200
    [event] = oadr_events(message)
    assert status(event) in EVENT_STATUSES
    assert text(event, "ei:eiEvent/ei:eventDescriptor/ei:eiMarketContext/emix:marketContext") == \
        "http://market.example/conf"
    created = parse_datetime(descriptor(event, "createdDateTime"))
    assert abs(created - utcnow()) < minutes(5)
    [target] = event.findall("ei:eiEvent/ei:eiTarget", NS)
    assert [text(v, ".") for v in target.findall("ei:venID", NS)] == [client.ven_id]
    assert [r.text for r in target.findall("ei:resourceID", NS)] == ["meter-1", "meter-2"]
    assert [g.text for g in target.findall("ei:groupID", NS)] == ["group-east"]
    assert [p.text for p in target.findall("ei:partyID", NS)] == ["party-9"]
    # The other VEN sees the same event naming only itself.
    [seen_by_other] = oadr_events(await distribution(gateway, other.ven_id))
    assert [v.text for v in seen_by_other.findall("ei:eiEvent/ei:eiTarget/ei:venID", NS)] == [other.ven_id]


async def test_e1_1010_nothing_pending_gets_an_oadr_response_or_an_empty_distribution(gateway, vens):
    """E1_1010 ([QL] nothing pending): a registered VEN without events polls and gets oadrResponse
    200; asking with oadrRequestEvent it gets an oadrDistributeEvent with eiResponse 200, its own
    requestID echoed, a populated requestID of its own (rule 41), and no oadrEvent."""
    client = await registered(vens, "conf-idle-ven", gateway.vtn_url)
    answer = await send(gateway, "OadrPoll", poll(client.ven_id))
    assert kind(answer) == "oadrResponse" and code(answer) == 200
    assert text(answer, "ei:venID") == client.ven_id
    answer = await send(gateway, "EiEvent", request_event(client.ven_id, request_id="req-idle"))
    assert kind(answer) == "oadrDistributeEvent" and code(answer) == 200
    assert text(answer, "ei:eiResponse/pyld:requestID") == "req-idle"
    assert text(answer, "pyld:requestID")
    assert oadr_events(answer) == []


async def test_rule_41_every_distribution_carries_a_request_id(gateway, bus, vens):
    """Rule 41: oadrDistributeEvent's own requestID is populated — on a poll with events, on a poll
    after the VEN's last event went (an empty distribution), and answering oadrRequestEvent."""
    client = await registered(vens, "conf-reqid-ven", gateway.vtn_url)
    await put_event(bus, make_event("conf-reqid-1", [client.ven_id], response_required="never"))
    first = await distribution(gateway, client.ven_id)
    asked = await send(gateway, "EiEvent", request_event(client.ven_id))
    await put_event(bus, make_event("conf-reqid-1", [], modification_number=1, response_required="never"))
    emptied = await distribution(gateway, client.ven_id, lambda m: not ids(m))
    for message in (first, asked, emptied):
        assert kind(message) == "oadrDistributeEvent"
        [own] = message.findall("pyld:requestID", NS)
        assert own.text and own.text.strip(), etree.tostring(message)[:300]
    assert ids(first) == ids(asked) == ["conf-reqid-1"]


async def test_rule_23_request_event_honours_reply_limit_in_rule_15_order(gateway, bus, vens):
    """Rule 23 (E1_1050): the VTN answers oadrRequestEvent with oadrDistributeEvent and honours
    replyLimit: with 3 events and replyLimit 2, the first two in rule 15 order (the active one,
    then the sooner of the two far ones), and the event left out is not counted as delivered: the
    next poll brings all three; without a limit (or with one above the count) all three; the
    VEN's requestID is echoed in the eiResponse."""
    client = await registered(vens, "conf-limit-ven", gateway.vtn_url)
    now = utcnow().replace(microsecond=0)
    await put_event(bus, make_event("conf-lim-later", [client.ven_id], start_at=now + timedelta(hours=4)))
    await put_event(bus, make_event("conf-lim-active", [client.ven_id], status=EventStatus.ACTIVE,
                                    start_at=now - minutes(5)))
    await put_event(bus, make_event("conf-lim-sooner", [client.ven_id], start_at=now + timedelta(hours=2)))
    await eventually(lambda: all(gateway.events.get(e) for e in ("conf-lim-later", "conf-lim-active",
                                                                  "conf-lim-sooner")), 5, message="events mirrored")

    limited = await send(gateway, "EiEvent", request_event(client.ven_id, request_id="req-lim", reply_limit=2))
    assert kind(limited) == "oadrDistributeEvent" and code(limited) == 200
    assert text(limited, "ei:eiResponse/pyld:requestID") == "req-lim"
    assert ids(limited) == ["conf-lim-active", "conf-lim-sooner"]
    # The VEN was not shown the third event: its next poll brings the whole set (rule 50), once.
    polled = await send(gateway, "OadrPoll", poll(client.ven_id))
    assert kind(polled) == "oadrDistributeEvent"
    assert ids(polled) == ["conf-lim-active", "conf-lim-sooner", "conf-lim-later"]
    assert kind(await send(gateway, "OadrPoll", poll(client.ven_id))) == "oadrResponse"
    everything = await send(gateway, "EiEvent", request_event(client.ven_id))
    assert ids(everything) == ["conf-lim-active", "conf-lim-sooner", "conf-lim-later"]
    above = await send(gateway, "EiEvent", request_event(client.ven_id, reply_limit=5))
    assert ids(above) == ids(everything)


# --------------------------------------------------------------------------- what the VTN accepts


async def test_rules_16_and_17_opt_in_then_a_later_opt_out_changes_the_answer(gateway, bus, vens):
    """Rule 16 (optIn and optOut both recognised) and rule 17 (a later, asynchronous optOut for
    an event already acknowledged), E1_1040: a SIMPLE and a price event, both opted in with one
    oadrCreatedEvent, then an optOut for the price event alone. Each is answered 200 and becomes
    an opt fact; the VEN's answer to each event is its latest fact."""
    client = await registered(vens, "conf-opt-ven", gateway.vtn_url)
    await put_event(bus, make_event("conf-opt-simple", [client.ven_id]))
    await put_event(bus, make_event("conf-opt-price", [client.ven_id], signal_name="ELECTRICITY_PRICE",
                                    signal_type="price",
                                    intervals=[EventInterval(duration=minutes(45), payload=0.4)]))
    message = await distribution(gateway, client.ven_id, holding("conf-opt-simple", "conf-opt-price"))
    request_id = text(message, "pyld:requestID")

    answer = await send(gateway, "EiEvent", created_event(
        client.ven_id, {"event_id": "conf-opt-simple", "opt_type": "optIn", "request_id": request_id},
        {"event_id": "conf-opt-price", "opt_type": "optIn", "request_id": request_id}))
    assert kind(answer) == "oadrResponse" and code(answer) == 200
    subject = bus.subjects.opt(client.ven_id)

    def latest(facts: list[dict]) -> dict[str, str]:
        return {f["event_id"]: f["opt_type"] for f in facts}

    facts = await eventually(lambda: bus.stored(subject), 5, message="opt facts")
    assert latest(facts) == {"conf-opt-simple": "optIn", "conf-opt-price": "optIn"}

    answer = await send(gateway, "EiEvent", created_event(
        client.ven_id, {"event_id": "conf-opt-price", "opt_type": "optOut", "request_id": request_id}))
    assert code(answer) == 200
    facts = await bus.stored(subject)
    assert [(f["event_id"], f["opt_type"]) for f in facts] == [
        ("conf-opt-simple", "optIn"), ("conf-opt-price", "optIn"), ("conf-opt-price", "optOut")]
    assert latest(facts) == {"conf-opt-simple": "optIn", "conf-opt-price": "optOut"}
    assert all(f["source"] == "oadrCreatedEvent" and f["modification_number"] == 0 for f in facts)


async def test_rules_16_and_17_opting_back_in_with_the_same_request_id_changes_the_answer_again(gateway, bus, vens):
    """Rules 16/17 the other way round: optIn, optOut, then optIn again, each answering the same
    oadrDistributeEvent (so with its requestID, as VENs answer). The VEN's answer is optIn again."""
    client = await registered(vens, "conf-toggle-ven", gateway.vtn_url)
    await put_event(bus, make_event("conf-toggle", [client.ven_id]))
    request_id = text(await distribution(gateway, client.ven_id), "pyld:requestID")
    for opt_type in ("optIn", "optOut", "optIn"):
        answer = await send(gateway, "EiEvent", created_event(
            client.ven_id, {"event_id": "conf-toggle", "opt_type": opt_type, "request_id": request_id}))
        assert code(answer) == 200
    facts = await bus.stored(bus.subjects.opt(client.ven_id))
    assert [f["opt_type"] for f in facts] == ["optIn", "optOut", "optIn"]


async def test_rule_21_e1_1080_a_wrong_ven_id_gets_an_error_and_changes_nothing(gateway, bus, vens):
    """Rule 21 (E1_1080), in open enrollment (plain HTTP, no certificate to bind a venID to): an
    oadrCreatedEvent naming an unknown venID is answered 452 and records nothing; one naming
    another registered VEN, for an event that does not target that VEN, is answered 462; an
    oadrPoll with an unknown venID is answered oadrRequestReregistration (never the events). In
    provisioned enrollment a venID not bound to the caller's certificate gets 463
    (test_secure_identity.py::test_a_spoofed_ven_id_gets_463_and_cannot_be_told_from_an_unknown_one)."""
    client = await registered(vens, "conf-venid-ven", gateway.vtn_url)
    bystander = await registered(vens, "conf-venid-other", gateway.vtn_url)
    await put_event(bus, make_event("conf-venid-1", [client.ven_id]))
    await distribution(gateway, client.ven_id)

    wrong = client.ven_id + "x"
    answer = await send(gateway, "EiEvent", created_event(wrong, {"event_id": "conf-venid-1", "opt_type": "optOut"}))
    assert kind(answer) == "oadrResponse" and code(answer) == 452
    answer = await send(gateway, "EiEvent", created_event(bystander.ven_id,
                                                          {"event_id": "conf-venid-1", "opt_type": "optOut"}))
    assert kind(answer) == "oadrResponse" and code(answer) == 462
    answer = await send(gateway, "OadrPoll", poll(wrong))
    assert kind(answer) == "oadrRequestReregistration" and text(answer, "ei:venID") == wrong
    answer = await send(gateway, "EiEvent", request_event(wrong))
    assert kind(answer) == "oadrDistributeEvent" and code(answer) == 452 and oadr_events(answer) == []
    for ven in (client.ven_id, bystander.ven_id, wrong):
        assert await bus.stored(bus.subjects.opt(ven)) == []


async def test_rule_25_e1_1070_one_failed_event_response_does_not_fail_the_others(gateway, bus, vens):
    """Rule 25 (E1_1070): an oadrCreatedEvent whose eiResponse is 200 and whose eventResponses are
    460 (an x-CUSTOM signal the VEN does not support) for one event and 200 optIn for another is
    accepted (200). Each eventResponse is inspected and recorded as an opt fact with its own
    responseCode: the 460 one as the VEN sent it (optOut, response_code 460), the other as optIn
    (200)."""
    client = await registered(vens, "conf-multi-ven", gateway.vtn_url)
    await put_event(bus, make_event("conf-custom", [client.ven_id], signal_name="x-CUSTOM", signal_type="level",
                                    intervals=[EventInterval(duration=minutes(30), payload=7)]))
    await put_event(bus, make_event("conf-plain", [client.ven_id]))
    message = await distribution(gateway, client.ven_id, holding("conf-custom", "conf-plain"))
    assert [text(s, "ei:signalName") for s in signals(by_id(message)["conf-custom"])] == ["x-CUSTOM"]

    answer = await send(gateway, "EiEvent", created_event(
        client.ven_id,
        {"event_id": "conf-custom", "opt_type": "optOut", "response_code": 460},
        {"event_id": "conf-plain", "opt_type": "optIn", "response_code": 200}))
    assert kind(answer) == "oadrResponse" and code(answer) == 200
    facts = await eventually(lambda: bus.stored(bus.subjects.opt(client.ven_id)), 5, message="opt facts")
    assert sorted((f["event_id"], f["opt_type"], f["response_code"]) for f in facts) == [
        ("conf-custom", "optOut", 460), ("conf-plain", "optIn", 200)]


async def test_rule_42_an_empty_ei_response_request_id_is_accepted(gateway, bus, vens):
    """Rule 42: in oadrCreatedEvent the eiResponse's requestID may be empty; the VTN answers 200 and
    takes the requestID inside each eventResponse (recorded on the opt fact). With a requestID in
    the eiResponse too, that one is echoed."""
    client = await registered(vens, "conf-emptyreq-ven", gateway.vtn_url)
    await put_event(bus, make_event("conf-emptyreq", [client.ven_id]))
    await distribution(gateway, client.ven_id)
    body = created_event(client.ven_id, {"event_id": "conf-emptyreq", "opt_type": "optIn", "request_id": "req-42"})
    assert etree.fromstring(body.encode()).xpath(
        "//ei:eiResponse/pyld:requestID[not(text())]", namespaces=NS), "the eiResponse requestID is not empty"
    answer = await send(gateway, "EiEvent", body)
    assert kind(answer) == "oadrResponse" and code(answer) == 200
    [fact] = await eventually(lambda: bus.stored(bus.subjects.opt(client.ven_id)), 5, message="opt fact")
    assert fact["request_id"] == "req-42" and fact["opt_type"] == "optIn"

    answer = await send(gateway, "EiEvent", created_event(
        client.ven_id, {"event_id": "conf-emptyreq", "opt_type": "optOut", "request_id": "req-42b"},
        request_id="req-outer"))
    assert code(answer) == 200 and text(answer, "ei:eiResponse/pyld:requestID") == "req-outer"


async def test_rule_48_unknown_event_id_is_452_and_a_stale_modification_number_is_450(gateway, bus, vens):
    """Rule 48: logical errors in oadrCreatedEvent get 4xx — an unknown eventID 452; a
    modificationNumber that is not the event's current one (an answer to a superseded version,
    or to one not yet sent) 450, as the EPRI VTN does. Nothing is recorded for either; the answer
    at the current number is accepted."""
    client = await registered(vens, "conf-stale-ven", gateway.vtn_url)
    await put_event(bus, make_event("conf-stale", [client.ven_id]))
    await distribution(gateway, client.ven_id)
    await put_event(bus, make_event("conf-stale", [client.ven_id], modification_number=1, priority=1))
    assert modification(by_id(await distribution(gateway, client.ven_id))["conf-stale"]) == 1

    unknown = await send(gateway, "EiEvent", created_event(client.ven_id, {"event_id": "conf-nope", "opt_type": "optIn"}))
    assert kind(unknown) == "oadrResponse" and code(unknown) == 452
    stale = await send(gateway, "EiEvent", created_event(
        client.ven_id, {"event_id": "conf-stale", "opt_type": "optIn", "modification_number": 0}))
    assert kind(stale) == "oadrResponse" and code(stale) == 450
    ahead = await send(gateway, "EiEvent", created_event(
        client.ven_id, {"event_id": "conf-stale", "opt_type": "optIn", "modification_number": 2}))
    assert code(ahead) == 450
    assert await bus.stored(bus.subjects.opt(client.ven_id)) == []
    current = await send(gateway, "EiEvent", created_event(
        client.ven_id, {"event_id": "conf-stale", "opt_type": "optIn", "modification_number": 1}))
    assert code(current) == 200
    [fact] = await eventually(lambda: bus.stored(bus.subjects.opt(client.ven_id)), 5, message="opt fact")
    assert fact["modification_number"] == 1


# --------------------------------------------------------------------------- every outbound message


def registration(name: str, **ids) -> str:
    return create_message("oadrCreatePartyRegistration", request_id="req-reg", ven_name=name, http_pull_model=True,
                          xml_signature=False, report_only=False, profile_name="2.0b", transport_name="simpleHttp",
                          transport_address=None, **{"ven_id": None, "registration_id": None, **ids})


async def test_rule_45_no_schema_location_in_anything_the_vtn_sends(gateway, bus, vens):
    """Rule 45: no schemaLocation attribute (in any namespace) in any outbound XML —
    registration answers, an idle poll's oadrResponse, oadrDistributeEvent from a poll and from
    oadrRequestEvent, the answer to oadrCreatedEvent, error answers, oadrRequestReregistration,
    oadrCreatedOpt and oadrCanceledOpt; [QL] every message carries schemaVersion "2.0b"."""
    answers: dict[str, bytes] = {}
    answers["query"] = await post_raw(gateway, "EiRegisterParty",
                                      create_message("oadrQueryRegistration", request_id="req-q"))
    raw = await post_raw(gateway, "EiRegisterParty", registration("conf-schema-ven"))
    answers["registration"] = raw
    ven_id = text(message_of(raw), "ei:venID")
    assert ven_id
    answers["idle poll"] = await post_raw(gateway, "OadrPoll", poll(ven_id))
    await put_event(bus, make_event("conf-schema-1", [ven_id]))
    answers["distribution"] = await distribution_raw(gateway, ven_id)
    answers["requested distribution"] = await post_raw(gateway, "EiEvent", request_event(ven_id))
    answers["created event"] = await post_raw(gateway, "EiEvent", created_event(
        ven_id, {"event_id": "conf-schema-1", "opt_type": "optIn"}))
    answers["452"] = await post_raw(gateway, "EiEvent", created_event(
        ven_id, {"event_id": "conf-schema-none", "opt_type": "optIn"}))
    answers["reregistration"] = await post_raw(gateway, "OadrPoll", poll("conf-nobody"))
    opt = create_message("oadrCreateOpt", opt_id="conf-opt-1", opt_type="optOut", opt_reason="participating",
                         ven_id=ven_id, created_date_time=utcnow(), request_id="req-o", event_id="conf-schema-1",
                         modification_number=0, targets=[{"ven_id": ven_id}])
    answers["created opt"] = await post_raw(gateway, "EiOpt", opt)
    answers["canceled opt"] = await post_raw(gateway, "EiOpt", create_message(
        "oadrCancelOpt", opt_id="conf-opt-1", ven_id=ven_id, request_id="req-c"))
    answers["cancel registration"] = await post_raw(gateway, "EiRegisterParty", create_message(
        "oadrCancelPartyRegistration", request_id="req-x", ven_id=ven_id,
        registration_id=text(message_of(raw), "ei:registrationID")))

    kinds = {}
    for what, raw in answers.items():
        assert b"schemaLocation" not in raw, what
        root = etree.fromstring(raw)
        for element in root.iter():
            assert not any(etree.QName(a).localname == "schemaLocation" for a in element.attrib), what
        message = message_of(raw)
        assert message.get(f"{{{NS['ei']}}}schemaVersion") == "2.0b", what
        kinds[what] = kind(message)
    assert kinds == {
        "query": "oadrCreatedPartyRegistration", "registration": "oadrCreatedPartyRegistration",
        "idle poll": "oadrResponse", "distribution": "oadrDistributeEvent",
        "requested distribution": "oadrDistributeEvent", "created event": "oadrResponse", "452": "oadrResponse",
        "reregistration": "oadrRequestReregistration", "created opt": "oadrCreatedOpt",
        "canceled opt": "oadrCanceledOpt", "cancel registration": "oadrCanceledPartyRegistration"}
    assert code(message_of(answers["452"])) == 452
