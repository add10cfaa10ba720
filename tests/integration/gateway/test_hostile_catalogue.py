"""The hostile-input catalogue: every request below gets the right answer with a generic body,
and the same gateway process goes on serving.

The gateway runs as a separate process (``python -m adrstack.gateway``), so that a crash in
the parser (libxml2) shows as a dead process and a failed test, not a dead pytest. It has its
own NATS names, slow-client timeouts of 1 s (headers) and 2 s (body), and one registered VEN
with TELEMETRY_USAGE metadata so that report cases reach the value checks. After every case
the process must be alive, answer that VEN's oadrPoll with oadrResponse 200 and GET /health
with 200, and have logged no traceback.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import re
import resource
import secrets
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import nats
import psutil
import pytest
from lxml import etree
from openleadr import OpenADRClient
from openleadr.messaging import create_message

from adrstack.gateway.codec import HostileXml
from adrstack.gateway.codec.guard import check_xml
from adrstack.gateway.settings import VTN_PATH, GatewaySettings
from tests.conftest import _cleanup_nats, provision_nats, unique_names
from tests.helpers import STACK_NAME_FIELDS, TEST_STREAM_LIMITS, eventually, stack_env, wait_until
from tests.integration.gateway import rawhttp
from tests.integration.gateway.conftest import free_port
from tests.integration.gateway.test_reports import add_usage_report

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
MAX_BODY = 1024 * 1024  # the gateway's default max_body_bytes

OADR = "http://openadr.org/oadr-2.0b/2012/07"
EI = "http://docs.oasis-open.org/ns/energyinterop/201110"
PYLD = "http://docs.oasis-open.org/ns/energyinterop/201110/payloads"
AT = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
SPEC, RID = "usage-1", "power-1"  # what add_usage_report registers

# libxml2 / lxml wording that must never reach a caller.
PARSER_WORDING = ("line 1", "column", "Element '{", "xmlParse", "Opening and ending tag", "libxml", "lxml",
                  "SCHEMASV", "SCHEMAV_", "XML_PARSE", "Excessive depth", "Document is empty",
                  "Invalid bytes", "<string>", "Traceback")


# --------------------------------------------------------------------------- the process


class GatewayProcess:
    """``python -m adrstack.gateway`` on its own port, configured by environment only."""

    def __init__(self, settings: GatewaySettings, log_path: Path):
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.ven_id = ""
        self.ven_name = ""
        self._log_file = None
        self._log_mark = 0

    @property
    def port(self) -> int:
        return self.settings.vtn_port

    @property
    def vtn_url(self) -> str:
        return f"http://{rawhttp.HOST}:{self.port}{VTN_PATH}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **stack_env(s),
            "ADRSTACK_VTN_HOST": rawhttp.HOST,
            "ADRSTACK_VTN_PORT": str(s.vtn_port),
            "ADRSTACK_HEADER_TIMEOUT": str(s.header_timeout),
            "ADRSTACK_BODY_TIMEOUT": str(s.body_timeout),
            "ADRSTACK_POLL_INTERVAL": "10",
            "ADRSTACK_REPORT_INTERVAL": "10",
            "ADRSTACK_LOG_LEVEL": "INFO",
        }

    def start(self, timeout: float = 30.0) -> None:
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "adrstack.gateway"], env=self.env(),
                                     stdout=self._log_file, stderr=subprocess.STDOUT)
        def healthy() -> bool:
            if not self.alive:
                raise RuntimeError(f"gateway exited while starting ({self.exit_status()}):\n{self.log_tail()}")
            return httpx.get(f"http://{rawhttp.HOST}:{self.port}/health", timeout=2).status_code == 200

        try:
            wait_until(healthy, timeout, message="gateway healthy")
        except AssertionError as e:
            raise RuntimeError(f"{e}\n{self.log_tail()}") from e

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def exit_status(self) -> str:
        code = None if self.proc is None else self.proc.poll()
        if code is None:
            return "running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def mark_log(self) -> None:
        self._log_mark = self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since_mark(self) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(self._log_mark)
            return f.read().decode("utf-8", "replace")


def in_thread(fn, *args):
    """``fn(*args)`` in another thread, so that ``asyncio.run`` in it never meets a test's loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def raise_nofile(wanted: int = 8192) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# The reportRequestID the VTN issued to each VEN registered here: rule 304 refuses any other.
ISSUED: dict[str, str] = {}


async def register_ven(vtn_url: str, name: str) -> str:
    """A real openleadr VEN registers with TELEMETRY_USAGE metadata; the report request that
    produces (in the oadrRegisteredReport) is kept in ISSUED, and the VTN's own metadata is taken
    by a poll, so that every later poll of this VEN is an idle oadrResponse."""
    client = OpenADRClient(ven_name=name, vtn_url=vtn_url)
    add_usage_report(client)
    try:
        await client.create_party_registration()
        assert client.ven_id, "registration gave no venID"
        await client.register_reports(client.reports)
        [request] = client.report_requests
        ISSUED[client.ven_id] = request["report_request_id"]
        kinds = []
        for _ in range(5):
            kind, _payload = await client.poll()
            kinds.append(kind)
            if kind == "oadrResponse":
                return client.ven_id
        raise AssertionError(f"polls never became idle: {kinds}")
    finally:
        if client.client_session is not None:
            await client.client_session.close()


@pytest.fixture(scope="module")
def gateway_process(infra, tmp_path_factory):
    names = unique_names()
    settings = GatewaySettings(nats_url=infra.nats_url, vtn_host=rawhttp.HOST, vtn_port=free_port(),
                               header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT,
                               **{k: v for k, v in names.items() if k in STACK_NAME_FIELDS}, **TEST_STREAM_LIMITS)
    in_thread(provision_nats, settings)
    raise_nofile()
    process = GatewayProcess(settings, tmp_path_factory.mktemp("catalogue") / "gateway.log")
    try:
        process.start()
        process.ven_name = f"catalogue-{names['tag']}"
        process.ven_id = in_thread(asyncio.run, register_ven(process.vtn_url, process.ven_name))
        yield process
    finally:
        process.stop()
        in_thread(_cleanup_nats, settings)


@pytest.fixture
def gw(gateway_process):
    """The module's gateway process; restarted if an earlier case killed it (that case failed)."""
    if not gateway_process.alive:
        gateway_process.stop()
        gateway_process.start()
    gateway_process.mark_log()
    return gateway_process


# --------------------------------------------------------------------------- assertions


def assert_no_parser_wording(text: str) -> None:
    leaked = [w for w in PARSER_WORDING if w in text]
    assert not leaked, f"parser/internal wording {leaked} reached the caller: {text[:300]!r}"


def assert_generic(reply: rawhttp.Reply, status: int) -> None:
    """An HTTP error with a short, generic text/plain body."""
    assert reply.status == status, (reply.status, reply.text[:300])
    assert reply.content_type == "text/plain", reply.headers
    assert 0 < len(reply.body) <= 200, reply.body
    assert_no_parser_wording(reply.text)


def answer_of(reply: rawhttp.Reply) -> tuple[str, int | None]:
    """(message type, first responseCode or None) of an OpenADR answer."""
    assert reply.status == 200 and reply.content_type == "application/xml", (reply.status, reply.text[:300])
    assert_no_parser_wording(reply.text)
    root = etree.fromstring(reply.body)
    assert root.tag == f"{{{OADR}}}oadrPayload", root.tag
    message = root.find(f"{{{OADR}}}oadrSignedObject")[0]
    code = message.find(f".//{{{EI}}}responseCode")
    return etree.QName(message).localname, None if code is None else int(code.text)


async def post(gw: GatewayProcess, service: str, body: bytes | str, content_type: str | None = "application/xml",
               **kwargs) -> rawhttp.Reply:
    if isinstance(body, str):
        body = body.encode("utf-8")
    return await rawhttp.request(gw.port, "POST", f"{VTN_PATH}/{service}", body, content_type=content_type, **kwargs)



_RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", re.M)


def log_errors(text: str) -> list[str]:
    """The ERROR/CRITICAL records and tracebacks in a log excerpt."""
    starts = [m.start() for m in _RECORD_START.finditer(text)] or [0]
    records = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    bad = [r for r in records if "Traceback" in r or " ERROR " in r[:40] or " CRITICAL " in r[:40]]
    return bad


async def assert_still_serving(gw: GatewayProcess) -> None:
    """Alive, the registered VEN's poll answered with oadrResponse 200, /health 200, and no error
    logged since the case began."""
    assert gw.alive, f"the gateway died ({gw.exit_status()}):\n{gw.log_tail()}"
    assert answer_of(await post(gw, "OadrPoll", poll(gw.ven_id))) == ("oadrResponse", 200)
    health = await rawhttp.request(gw.port, "GET", "/health", content_type=None)
    assert health.status == 200 and json.loads(health.body)["nats"] == "connected", health
    assert gw.alive, f"the gateway died ({gw.exit_status()}):\n{gw.log_tail()}"
    errors = log_errors(gw.log_since_mark())
    assert not errors, "\n".join(errors)[-4000:]


# --------------------------------------------------------------------------- NATS view


async def last_seq(gw: GatewayProcess, subject: str) -> int:
    nc = await nats.connect(gw.settings.nats_url)
    try:
        msg = await nc.jetstream().get_last_msg(gw.settings.stream_name, subject)
        return msg.seq
    except nats.js.errors.NotFoundError:
        return 0
    finally:
        await nc.close()


async def stored(gw: GatewayProcess, subject: str) -> list[dict]:
    """Every message the stream holds on ``subject`` (read up to its last sequence: no idle timeout)."""
    last = await last_seq(gw, subject)
    if not last:
        return []
    nc = await nats.connect(gw.settings.nats_url)
    out = []
    try:
        sub = await nc.jetstream().subscribe(subject, stream=gw.settings.stream_name, ordered_consumer=True)
        while True:
            msg = await sub.next_msg(timeout=10)
            out.append(json.loads(msg.data))
            if msg.metadata.sequence.stream >= last:
                return out
    finally:
        await nc.close()


def report_data_subject(gw: GatewayProcess) -> str:
    return gw.settings.subjects.report_data(gw.ven_id)


# --------------------------------------------------------------------------- messages


def without_declaration(xml: str) -> str:
    return re.sub(r"^<\?xml[^>]*\?>\s*", "", xml)


def poll(ven_id: str) -> str:
    return create_message("oadrPoll", ven_id="VENID-SLOT").replace("VENID-SLOT", escape(ven_id))


def request_event(ven_id: str) -> str:
    return create_message("oadrRequestEvent", ven_id=ven_id, request_id="req-event-1")


def created_event(ven_id: str) -> str:
    return create_message("oadrCreatedEvent", ven_id=ven_id,
                          response={"response_code": 200, "response_description": "OK", "request_id": "r-1"},
                          event_responses=[{"response_code": 200, "response_description": "OK", "request_id": "r-1",
                                            "event_id": "evt-1", "modification_number": 0, "opt_type": "optIn"}])


def create_opt(ven_id: str) -> str:
    return create_message("oadrCreateOpt", opt_id="opt-1", opt_type="optOut", opt_reason="participating",
                          ven_id=ven_id, created_date_time=AT, request_id="req-opt-1", event_id="evt-1",
                          modification_number=0, targets=[{"ven_id": ven_id}])


def cancel_opt(ven_id: str) -> str:
    return create_message("oadrCancelOpt", opt_id="opt-1", ven_id=ven_id, request_id="req-opt-2")


def registration(name: str) -> str:
    return create_message("oadrCreatePartyRegistration", request_id="r-1", ven_name=name, http_pull_model=True,
                          xml_signature=False, report_only=False, profile_name="2.0b", transport_name="simpleHttp",
                          transport_address=None, ven_id=None, registration_id=None)


def distribute_event(_ven_id: str) -> str:
    return create_message("oadrDistributeEvent", request_id="r-1", vtn_id="SOME-VTN", events=[],
                          response={"response_code": 200, "response_description": "OK", "request_id": "r-1"})


def created_party_registration(ven_id: str) -> str:
    return create_message("oadrCreatedPartyRegistration", ven_id=ven_id, registration_id="reg-1", vtn_id="SOME-VTN",
                          response={"response_code": 200, "response_description": "OK", "request_id": "r-1"},
                          profiles=[{"profile_name": "2.0b", "transports": [{"transport_name": "simpleHttp"}]}],
                          requested_oadr_poll_freq=timedelta(seconds=10))


def _format_at(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def update_report(ven_id: str, *, value: str = "1.0", at: str = "2030-01-01T12:00:00Z", duration: str = "PT1M",
                  r_id: str = RID, fill_to: int | None = None) -> str:
    """An oadrUpdateReport for the registered usage-1 report, answering the request the VTN issued,
    with one interval carrying the given (raw) value, dtstart and duration; with ``fill_to``, as
    many distinct intervals as fit in that many bytes instead."""
    xml = create_message("oadrUpdateReport", ven_id=ven_id, request_id="req-update-1", reports=[{
        "report_id": "rep-1", "report_request_id": ISSUED.get(ven_id, "rr-never-issued"), "report_specifier_id": SPEC,
        "report_name": "TELEMETRY_USAGE", "created_date_time": AT,
        "intervals": [{"dtstart": AT, "duration": timedelta(minutes=1), "report_payload": {"r_id": RID, "value": 1.0}}],
    }])
    [template] = re.findall(r"<ei:interval>.*?</ei:interval>", xml, re.S)

    def interval(v: str, t: str) -> str:
        out = re.sub(r"(<xcal:date-time>)[^<]*", lambda m: m.group(1) + t, template)
        out = out.replace("<ei:value>1.0</ei:value>", f"<ei:value>{v}</ei:value>")
        out = out.replace(f"<ei:rID>{RID}</ei:rID>", f"<ei:rID>{r_id}</ei:rID>")
        return out.replace("<xcal:duration>PT1M</xcal:duration>", f"<xcal:duration>{duration}</xcal:duration>")

    before, after = xml.split(template)
    if fill_to is None:
        return before + interval(value, at) + after
    room = fill_to - len((before + after).encode())
    parts = []
    for i in range(1_000_000):
        part = interval(f"{i}.5", _format_at(AT + timedelta(seconds=i)))
        if len(part) > room:
            break
        parts.append(part)
        room -= len(part)
    return before + "".join(parts) + after


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


BARE_EI_RESPONSE = (f'<ei:eiResponse xmlns:ei="{EI}" xmlns:pyld="{PYLD}"><ei:responseCode>200</ei:responseCode>'
                    f"<ei:responseDescription>OK</ei:responseDescription><pyld:requestID>r-1</pyld:requestID>"
                    f"</ei:eiResponse>")


def bare_poll(ven_id: str) -> str:
    return (f'<oadr:oadrPoll xmlns:oadr="{OADR}" xmlns:ei="{EI}" ei:schemaVersion="2.0b">'
            f"<ei:venID>{ven_id}</ei:venID></oadr:oadrPoll>")


def non_utf8(ven_id: str) -> bytes:
    return poll(ven_id).encode().replace(f">{ven_id}<".encode(), f">{ven_id}".encode() + b"\xe9\xff<")


def truncated(ven_id: str) -> bytes:
    body = poll(ven_id).encode()
    return body[: len(body) // 2]


# --------------------------------------------------------------------------- not XML we can read: 400


@pytest.mark.parametrize("service, build", [
    pytest.param("OadrPoll", truncated, id="truncated-xml"),
    pytest.param("OadrPoll", lambda v: poll(v).replace(OADR, "http://openadr.org/oadr-2.0a/2012/07"),
                 id="wrong-namespace"),
    pytest.param("EiRegisterParty", lambda v: BARE_EI_RESPONSE, id="root-bare-eiResponse"),
    pytest.param("OadrPoll", bare_poll, id="root-bare-oadrPoll"),
    pytest.param("OadrPoll", non_utf8, id="non-utf8-bytes"),
    pytest.param("OadrPoll", lambda v: nested(300), id="nesting-300-deep"),
    pytest.param("OadrPoll", lambda v: nested(100_000), id="nesting-100000-deep"),
    pytest.param("OadrPoll", lambda v: b"", id="empty-body"),
    pytest.param("EiEvent", distribute_event, id="vtn-only-oadrDistributeEvent"),
    pytest.param("EiRegisterParty", created_party_registration, id="vtn-only-oadrCreatedPartyRegistration"),
    pytest.param("EiReport", lambda v: update_report(v, at="2030-13-01T12:00:00Z"), id="datetime-month-13"),
    pytest.param("EiReport", lambda v: update_report(v, at="next tuesday at noon"), id="datetime-unparseable"),
    pytest.param("EiReport", lambda v: update_report(v, duration="1 minute"), id="duration-not-schema-pattern"),
])
async def test_unreadable_xml_gets_400(gw, service, build):
    before = await last_seq(gw, report_data_subject(gw))
    assert_generic(await post(gw, service, build(gw.ven_id)), 400)
    assert await last_seq(gw, report_data_subject(gw)) == before
    await assert_still_serving(gw)


# --------------------------------------------------------------------------- DTDs and entities: 400 unparsed

# {trap} is a URL nobody should ever fetch; {ref} is where the document uses an entity.
DTD_PROLOGS = {
    "internal-subset-entity": '<?xml version="1.0"?>\n<!DOCTYPE oadr:oadrPayload [<!ENTITY v "{ven}">]>',
    "external-system-dtd": '<?xml version="1.0"?>\n<!DOCTYPE oadr:oadrPayload SYSTEM "{trap}/evil.dtd">',
    "external-entity-file": '<?xml version="1.0"?>\n<!DOCTYPE oadr:oadrPayload [<!ENTITY v SYSTEM "file:///etc/hostname">]>',
    "parameter-entities": ('<?xml version="1.0"?>\n<!DOCTYPE oadr:oadrPayload [<!ENTITY % ext SYSTEM "{trap}/p.dtd">'
                           "<!ENTITY % inner \"<!ENTITY v 'x'>\"> %inner; %ext;]>"),
    "billion-laughs": ('<?xml version="1.0"?>\n<!DOCTYPE oadr:oadrPayload [<!ENTITY lol0 "lol">'
                       + "".join(f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10))
                       + '<!ENTITY v "&lol9;">]>'),
    "lowercase-doctype": '<?xml version="1.0"?>\n<!doctype oadr:oadrPayload [<!entity v "{ven}">]>',
    "bom-doctype": '\ufeff<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE oadr:oadrPayload [<!ENTITY v "{ven}">]>',
    "utf16-doctype": '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE oadr:oadrPayload [<!ENTITY v "{ven}">]>',
    "utf7-disguised-doctype": ('<?xml version="1.0" encoding="UTF-7"?>\n'
                               "+ADw-!DOCTYPE oadr:oadrPayload +AFs-+ADw-!ENTITY v +ACI-x+ACI-+AD4-+AF0-+AD4-"),
    "entity-without-doctype": '<?xml version="1.0"?>\n<!ENTITY v "{ven}">',
}


class Trap:
    """A TCP listener standing for a remote DTD: it counts who connects."""

    def __init__(self):
        self.connections = 0

    async def __aenter__(self):
        async def seen(reader, writer):
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(seen, rawhttp.HOST, 0)
        self.url = f"http://{rawhttp.HOST}:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


@pytest.mark.parametrize("case", list(DTD_PROLOGS))
async def test_doctype_and_entity_variants_get_400_before_parsing(gw, case):
    async with Trap() as trap:
        prolog = DTD_PROLOGS[case].replace("{ven}", gw.ven_id).replace("{trap}", trap.url)
        text = prolog + "\n" + without_declaration(poll("&v;").replace("&amp;v;", "&v;"))
        body = text.encode("utf-16") if case == "utf16-doctype" else text.encode("utf-8")
        with pytest.raises(HostileXml):  # refused by the byte check that runs before any parser
            check_xml(body)
        for service in ("OadrPoll", "EiRegisterParty", "EiEvent", "EiReport"):
            assert_generic(await post(gw, service, body), 400)
        assert trap.connections == 0, "the gateway fetched an external DTD or entity"
    await assert_still_serving(gw)


# --------------------------------------------------------------------------- Content-Type


@pytest.mark.parametrize("content_type, status", [
    pytest.param("text/plain", 415, id="text-plain"),
    pytest.param("application/json", 415, id="application-json"),
    pytest.param(None, 415, id="missing"),
    pytest.param("text/xml; charset=utf-8", 200, id="text-xml-charset-accepted"),
    pytest.param("Application/XML", 200, id="mixed-case-application-xml-accepted"),
])
async def test_content_type(gw, content_type, status):
    reply = await post(gw, "OadrPoll", poll(gw.ven_id), content_type=content_type)
    if status == 200:
        assert answer_of(reply) == ("oadrResponse", 200)
    else:
        assert_generic(reply, status)
    await assert_still_serving(gw)


# --------------------------------------------------------------------------- sizes and slow clients


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_1_mib_gets_413(gw, chunked):
    body = b"<a>" + b"x" * MAX_BODY + b"</a>"
    payload = [body[i:i + 65536] for i in range(0, len(body), 65536)] if chunked else body
    assert_generic(await post(gw, "OadrPoll", payload), 413)
    await assert_still_serving(gw)


async def test_body_shorter_than_its_content_length_gets_408_or_is_closed(gw):
    body = poll(gw.ven_id).encode()
    reader, writer = await asyncio.open_connection(rawhttp.HOST, gw.port)
    try:
        writer.write(rawhttp.head("POST", f"{VTN_PATH}/OadrPoll", [
            ("Content-Type", "application/xml"), ("Content-Length", str(len(body) + 1000))]) + body)
        await writer.drain()
        # The client now stops sending but keeps the socket open.
        try:
            reply = await asyncio.wait_for(rawhttp.read_reply(reader), BODY_TIMEOUT + 15)
        except (asyncio.IncompleteReadError, ConnectionError):
            reply = None  # closed without an answer: also right
    finally:
        writer.close()
    if reply is not None:
        assert_generic(reply, 408)
    await assert_still_serving(gw)


def server_holds(gw: GatewayProcess, client_port: int) -> bool:
    """Whether the gateway process still has a socket for our connection from ``client_port``."""
    return any(c.raddr and c.raddr.port == client_port for c in psutil.Process(gw.proc.pid).net_connections("tcp"))


async def go_away_mid_body(gw: GatewayProcess, how: str) -> None:
    """Send half a body, then close (FIN) or reset (RST); wait until the gateway lets go of it."""
    body = poll(gw.ven_id).encode()
    reader, writer = await asyncio.open_connection(rawhttp.HOST, gw.port)
    client_port = writer.get_extra_info("sockname")[1]
    writer.write(rawhttp.head("POST", f"{VTN_PATH}/OadrPoll", [
        ("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]) + body[: len(body) // 2])
    await writer.drain()
    await eventually(lambda: server_holds(gw, client_port), 10, message="the gateway accepted the connection")
    if how == "reset":
        writer.transport.abort()
    else:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    await eventually(lambda: not server_holds(gw, client_port), 10, message="the gateway let go of the connection")


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_client_going_away_mid_body_breaks_nothing(gw, how):
    await go_away_mid_body(gw, how)
    await assert_still_serving(gw)


async def test_headers_slower_than_the_header_timeout_are_cut_off(gw):
    request_head = rawhttp.head("POST", f"{VTN_PATH}/OadrPoll", [("Content-Type", "application/xml"),
                                                                   ("Content-Length", "200")])
    reader, writer = await asyncio.open_connection(rawhttp.HOST, gw.port)
    sent = 0

    async def trickle():  # the slowloris pace is the input, not synchronisation
        nonlocal sent
        with contextlib.suppress(ConnectionError):
            for i in range(len(request_head)):
                writer.write(request_head[i:i + 1])
                await writer.drain()
                sent += 1
                await asyncio.sleep(0.3)

    task = asyncio.create_task(trickle())
    try:
        data = await rawhttp.read_until_closed(reader, HEADER_TIMEOUT + 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()
    assert data == b"", data[:300]
    assert sent < len(request_head), "the whole head went through: nothing was cut off"
    await assert_still_serving(gw)


async def test_connection_that_sends_nothing_is_closed(gw):
    reader, writer = await asyncio.open_connection(rawhttp.HOST, gw.port)
    try:
        assert await rawhttp.read_until_closed(reader, HEADER_TIMEOUT + 10) == b""
    finally:
        writer.close()
    await assert_still_serving(gw)


async def test_a_partial_request_line_is_cut_off_without_an_error(gw):
    reader, writer = await asyncio.open_connection(rawhttp.HOST, gw.port)
    try:
        writer.write(b"POST /OpenADR2/Simple/2.0b/OadrPoll HTT")
        assert await rawhttp.read_until_closed(reader, HEADER_TIMEOUT + 10) == b""
    finally:
        writer.close()
    await assert_still_serving(gw)


async def test_1000_half_open_connections_do_not_starve_polling_vens(gw, tmp_path):
    """A second gateway process on the same NATS names, with a header timeout long enough that the
    1,000 half-open connections are all held while a real openleadr VEN polls 20 times."""
    raise_nofile()
    settings = gw.settings.model_copy(update={"vtn_port": free_port(), "header_timeout": 5.0})
    second = GatewayProcess(settings, tmp_path / "second-gateway.log")
    await asyncio.to_thread(second.start)
    second.ven_id, second.ven_name = gw.ven_id, gw.ven_name
    second.mark_log()
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        async def half_open():
            reader, writer = await asyncio.open_connection(rawhttp.HOST, second.port)
            writer.write(b"POST /OpenADR2/Simple/2.0b/OadrPoll HTT")
            await writer.drain()
            held.append((reader, writer))

        await asyncio.gather(*(half_open() for _ in range(1000)))
        client = OpenADRClient(ven_name=gw.ven_name, vtn_url=second.vtn_url, ven_id=gw.ven_id)
        try:
            answers = [await client.poll() for _ in range(20)]
        finally:
            if client.client_session is not None:
                await client.client_session.close()
        assert [(kind, payload["response"]["response_code"]) for kind, payload in answers] == \
            [("oadrResponse", 200)] * 20
        # ... and the server closes every half-open one after its header timeout.
        closed = await asyncio.gather(*(rawhttp.read_until_closed(r, settings.header_timeout + 20) for r, _ in held))
        assert closed == [b""] * 1000
        await assert_still_serving(second)
    finally:
        for _, writer in held:
            writer.close()
        await asyncio.to_thread(second.stop)
    await assert_still_serving(gw)


def test_slow_client_defaults_are_10s_for_headers_and_30s_for_bodies(monkeypatch):
    for name in ("ADRSTACK_HEADER_TIMEOUT", "ADRSTACK_BODY_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    settings = GatewaySettings()
    assert (settings.header_timeout, settings.body_timeout) == (10, 30)


# --------------------------------------------------------------------------- venIDs


@pytest.mark.parametrize("service, build, expected", [
    pytest.param("OadrPoll", poll, ("oadrRequestReregistration", None), id="oadrPoll"),
    pytest.param("EiEvent", request_event, ("oadrDistributeEvent", 452), id="oadrRequestEvent"),
    pytest.param("EiEvent", created_event, ("oadrResponse", 452), id="oadrCreatedEvent"),
    pytest.param("EiReport", update_report, ("oadrUpdatedReport", 452), id="oadrUpdateReport"),
])
async def test_unknown_ven_id(gw, service, build, expected):
    """Rule 21 (E1_1080, open enrollment): a venID nobody registered is an error (452), and a poll
    with one is asked to register again."""
    stranger = "ven-nobody-" + secrets.token_hex(4)
    assert answer_of(await post(gw, service, build(stranger))) == expected
    await assert_still_serving(gw)


@pytest.mark.parametrize("ven_id", [
    pytest.param("ven.1", id="dot"),
    pytest.param("ven.*", id="star"),
    pytest.param("ven.>", id="gt"),
    pytest.param("a b", id="space"),
    pytest.param("v" * 129, id="129-chars"),
    pytest.param("", id="empty"),
])
async def test_ven_id_that_cannot_be_a_subject_token_gets_452(gw, ven_id):
    assert answer_of(await post(gw, "OadrPoll", poll(ven_id))) == ("oadrResponse", 452)
    await assert_still_serving(gw)


async def test_ven_name_over_256_characters_gets_454(gw):
    reply = await post(gw, "EiRegisterParty", registration("n" * 257))
    assert answer_of(reply) == ("oadrCreatedPartyRegistration", 454)
    await assert_still_serving(gw)


# --------------------------------------------------------------------------- report values


@pytest.mark.parametrize("changes, code", [
    pytest.param({"at": "9999-12-31T23:59:59Z"}, 454, id="datetime-year-9999"),
    pytest.param({"at": "2030-01-01T12:00:00"}, 454, id="datetime-without-zone"),
    pytest.param({"value": "9" * 400}, 454, id="value-400-digits"),
    pytest.param({"value": "INF"}, 454, id="value-INF"),
    pytest.param({"value": "NaN"}, 454, id="value-NaN"),
    pytest.param({"duration": "-PT1M"}, 454, id="duration-negative"),
    pytest.param({"duration": "P"}, 454, id="duration-P"),
    pytest.param({"duration": "PT"}, 454, id="duration-PT"),
    pytest.param({"duration": "P99999999Y"}, 454, id="duration-P99999999Y"),
    pytest.param({"r_id": "never-registered"}, 452, id="unregistered-rID"),
])
async def test_report_values_we_cannot_use_are_refused(gw, changes, code):
    before = await last_seq(gw, report_data_subject(gw))
    reply = await post(gw, "EiReport", update_report(gw.ven_id, **changes))
    assert answer_of(reply) == ("oadrUpdatedReport", code)
    assert await last_seq(gw, report_data_subject(gw)) == before, "refused data was published"
    await assert_still_serving(gw)


async def test_report_with_thousands_of_intervals_is_stored_whole(gw):
    # A VEN of its own: its subject holds this report's readings and nothing else.
    ven_id = await register_ven(gw.vtn_url, "catalogue-many-" + secrets.token_hex(4))
    body = update_report(ven_id, fill_to=MAX_BODY - 64).encode()
    assert MAX_BODY - 2048 < len(body) <= MAX_BODY
    sent = body.count(b"<ei:interval>")
    assert sent > 2000
    assert answer_of(await post(gw, "EiReport", body)) == ("oadrUpdatedReport", 200)
    facts = await stored(gw, gw.settings.subjects.report_data(ven_id))
    readings = [r for f in facts if f["report_request_id"] == ISSUED[ven_id] for r in f["readings"]]
    assert len(readings) == sent
    assert sorted(r["value"] for r in readings) == [i + 0.5 for i in range(sent)]
    await assert_still_serving(gw)


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize("service, build, expected", [
    pytest.param("EiReport", poll, ("oadrResponse", 459), id="oadrPoll-to-EiReport"),
    pytest.param("EiEvent", update_report, ("oadrUpdatedReport", 459), id="oadrUpdateReport-to-EiEvent"),
])
async def test_message_on_the_wrong_service_gets_459(gw, service, build, expected):
    before = await last_seq(gw, report_data_subject(gw))
    assert answer_of(await post(gw, service, build(gw.ven_id))) == expected
    assert await last_seq(gw, report_data_subject(gw)) == before
    await assert_still_serving(gw)


@pytest.mark.parametrize("build, expected", [
    pytest.param(create_opt, ("oadrCreatedOpt", 452), id="oadrCreateOpt-unknown-event"),
    pytest.param(cancel_opt, ("oadrCanceledOpt", 452), id="oadrCancelOpt-unknown-opt"),
])
async def test_opt_messages_about_unknown_things_get_452(gw, build, expected):
    assert answer_of(await post(gw, "EiOpt", build(gw.ven_id))) == expected
    await assert_still_serving(gw)


async def test_get_on_a_service_url_gets_405(gw):
    reply = await rawhttp.request(gw.port, "GET", f"{VTN_PATH}/OadrPoll", content_type=None)
    assert reply.status == 405, reply
    await assert_still_serving(gw)


async def test_unknown_service_path_gets_404(gw):
    reply = await post(gw, "EiNoSuchService", poll(gw.ven_id))
    assert reply.status == 404, reply
    await assert_still_serving(gw)


async def test_non_http_byte_salad_gets_400_or_is_closed(gw):
    salad = (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\xff\xfe\r\n\x80GARBAGE \x00\x01\x02 "
             b"\xc3\x28\xa0\xa1\r\n\r\n" + bytes(range(256)))
    reader, writer = await asyncio.open_connection(rawhttp.HOST, gw.port)
    try:
        writer.write(salad)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        data = await rawhttp.read_until_closed(reader, HEADER_TIMEOUT + 10)
    finally:
        writer.close()
    assert data == b"" or re.match(rb"HTTP/1\.[01] 400 ", data), data[:300]
    await assert_still_serving(gw)
