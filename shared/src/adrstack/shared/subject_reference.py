"""The NATS subject reference (``docs/subjects.md``), generated from the contracts in shared/.

What code already says is read from it: subject patterns (by calling :class:`Subjects` with
placeholder ids), message classes and their fields (pydantic), which stream captures a subject
(the streams' subject filters), the streams' and buckets' configurations (``adrstack.shared.jetstream``
with default settings). What code cannot say (who publishes and who consumes each subject, how its
message id is chosen, who writes and reads each bucket) is the data in :data:`SUBJECTS` and
:data:`BUCKETS` below, the one place it is kept.

Regenerate with::

    python3 -m uv run python -m adrstack.shared.subject_reference > docs/subjects.md

``tests/unit/shared/test_subject_reference.py`` fails when the committed file differs.
"""

from __future__ import annotations

import enum
import inspect
import sys
import types
import typing
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Mapping

from pydantic import AwareDatetime, BaseModel
from pydantic_core import PydanticUndefined

from . import messages as m
from .settings import CommonSettings
from .subjects import EVENT_COMMANDS, REPORT_COMMANDS, TOKEN_RULE, TRANSITIONS, VEN_ACTIONS, Subjects

REGENERATE = "python3 -m uv run python -m adrstack.shared.subject_reference > docs/subjects.md"

# Valid subject tokens standing for an id; shown as <ven_id>, <event_id>, ...
PLACEHOLDERS = {f"PLACEHOLDER-{name}": f"<{name}>" for name in ("ven_id", "event_id", "consumer")}
VEN_ID, EVENT_ID, CONSUMER = "PLACEHOLDER-ven_id", "PLACEHOLDER-event_id", "PLACEHOLDER-consumer"

RANDOM_ID = "random (uuid4): a new message per call"


@dataclass(frozen=True)
class SubjectDoc:
    """One subject (or a family that differs only in its last token, ``variants``)."""

    subject: Callable[..., str]  # (Subjects[, variant]) -> subject, with placeholder ids
    message: type[m.Message] | Mapping[str, type[m.Message]]  # per variant when a mapping
    published_by: str
    consumed_by: tuple[str, ...]
    meaning: str
    msg_id: str = RANDOM_ID
    variants: tuple[str, ...] = ()
    reply: type[m.Message] | None = None  # request/reply: the answer's message
    transport: str = "JetStream publish (acked by the stream)"


@dataclass(frozen=True)
class BucketDoc:
    setting: str  # the CommonSettings field holding its name
    written_by: str
    read_by: str
    keys: str


API_VEN_ACTIVITY = "api: GraphQL subscription `venActivity` (family `<prefix>.ven.>`)"
TELEMETRY = "telemetry (durable `telemetry`)"

SUBJECTS: tuple[SubjectDoc, ...] = (
    SubjectDoc(
        lambda s: s.ven_registered(VEN_ID), m.VenRegistered, "gateway (oadrCreatePartyRegistration)",
        (f"{TELEMETRY} → table `vens`", "api: GraphQL subscription `venRegistrations`", API_VEN_ACTIVITY),
        "a VEN registered (or registered again, `reregistration`)"),
    SubjectDoc(
        lambda s: s.ven_deregistered(VEN_ID), m.VenDeregistered,
        "gateway (oadrCancelPartyRegistration from the VEN, or a VTN-initiated cancellation it answered)",
        (f"{TELEMETRY} → table `vens` (`deregistered_at`)", "api: GraphQL subscription `venRegistrations`",
         API_VEN_ACTIVITY),
        "a VEN's registration ended",
        msg_id="derived from (ven_id, registration_id): one per registration"),
    SubjectDoc(
        lambda s: s.report_registered(VEN_ID), m.ReportsRegistered, "gateway (oadrRegisterReport)",
        (f"{TELEMETRY} → table `report_descriptions`", API_VEN_ACTIVITY),
        "the VEN declared its reports (metadata)"),
    SubjectDoc(
        lambda s: s.report_data(VEN_ID), m.ReportData, "gateway (oadrUpdateReport, TELEMETRY_USAGE)",
        (f"{TELEMETRY} → tables `readings` (day partitions) and `readings_15m`",
         "api: GraphQL subscription `readings`", API_VEN_ACTIVITY),
        "a batch of readings of one report",
        msg_id="derived from (ven_id, report specifier, every rID@time=value): a re-sent report is dropped"),
    SubjectDoc(
        lambda s: s.report_status(VEN_ID), m.ReportStatus, "gateway (oadrUpdateReport, TELEMETRY_STATUS)",
        (f"{TELEMETRY} → tables `ven_status` and `ven_status_latest`", API_VEN_ACTIVITY),
        "the resource statuses of one oadrReport",
        msg_id="derived from (ven_id, report specifier, the statuses): a re-sent report is dropped"),
    SubjectDoc(
        lambda s: s.opt(VEN_ID), m.OptResponse, "gateway (oadrCreatedEvent; oadrCreateOpt naming an event)",
        (f"{TELEMETRY} → tables `event_responses` and `event_opt_states`",
         "api: GraphQL subscription `optResponses`", API_VEN_ACTIVITY),
        "a VEN's optIn / optOut to an event",
        msg_id="oadrCreatedEvent: random (uuid4), one per answer received; oadrCreateOpt: derived from "
               "(ven_id, event_id, modification, the opt schedule's id)"),
    SubjectDoc(
        lambda s: s.opt_schedule(VEN_ID), m.OptSchedule, "gateway (oadrCreateOpt, oadrCancelOpt)",
        (f"{TELEMETRY} → table `opt_schedules`", API_VEN_ACTIVITY),
        "an EiOpt opt schedule sent, or withdrawn (`cancelled`)",
        msg_id="derived from (ven_id, optID, requestID, createdDateTime); a withdrawal from (ven_id, optID, "
               "the schedule's id)"),
    SubjectDoc(
        lambda s: s.seen(VEN_ID), m.VenSeen, "gateway (on an oadrPoll, at most once per "
        "`ADRSTACK_SEEN_INTERVAL` per VEN)",
        (f"{TELEMETRY} → table `vens` (`last_seen_at`)", API_VEN_ACTIVITY),
        "heartbeat: the VEN polled",
        msg_id="derived from (ven_id, heartbeat window): replicas and restarts within a window send the same id",
        transport="core NATS publish (not awaited; the stream stores it)"),
    SubjectDoc(
        lambda s: s.push_failed(VEN_ID), m.PushFailed, "gateway (push to a VEN with oadrHttpPullModel=false)",
        (f"{TELEMETRY} → table `push_failures`", API_VEN_ACTIVITY),
        "a push of oadrDistributeEvent did not get through (it is retried; the VEN also gets it on its next poll)"),
    SubjectDoc(
        lambda s: s.report_request(VEN_ID), m.ReportRequestChanged, "gateway (report requests it makes of VENs)",
        (f"{TELEMETRY} → table `report_requests`", API_VEN_ACTIVITY),
        "a report request of the VTN changed state",
        msg_id="derived from (ven_id, reportRequestID, the request's version)"),
    SubjectDoc(
        lambda s, t: s.event(EVENT_ID, t), m.EventTransition, "scheduler",
        (f"{TELEMETRY} → tables `dr_events` and `event_transitions`", "api: GraphQL subscription `eventUpdates`"),
        "a DR event was created or modified, or changed status; the message holds the event as it is after it",
        msg_id="derived from (event_id, the events bucket's revision, transition): one per committed state; "
               "a publish repaired after a crash carries the same id",
        variants=TRANSITIONS),
    SubjectDoc(
        lambda s, v: s.cmd_event(v), dict(zip(EVENT_COMMANDS, (m.CreateEventCommand, m.ModifyEventCommand,
                                                                m.CancelEventCommand))),
        "api (GraphQL `createEvent`, `modifyEvent`, `cancelEvent`; `POST /send_event`)",
        ("scheduler (queue group `ADRSTACK_QUEUE_GROUP`, default `scheduler`: one replica answers)",),
        "a command to the scheduler; `idempotency_key` makes a retry safe (kept a day in `openadr-commands`)",
        msg_id="none (not stored)", variants=EVENT_COMMANDS, reply=m.CommandReply,
        transport="core NATS request/reply (not stored)"),
    SubjectDoc(
        lambda s, v: s.cmd_ven(v), m.VenActionCommand,
        "api (GraphQL `cancelVenRegistration`, `requestVenReregistration`)",
        ("gateway (queue group `adrstack-gateway`: one replica answers)",),
        "ask a VEN, on its next poll, to cancel its registration or to register again",
        msg_id="none (not stored)", variants=VEN_ACTIONS, reply=m.VenActionReply,
        transport="core NATS request/reply (not stored)"),
    SubjectDoc(
        lambda s, v: s.cmd_report(v), dict(zip(REPORT_COMMANDS, (m.RequestReportCommand, m.CancelReportCommand))),
        "api (GraphQL `requestReport`, `cancelReport`)",
        ("gateway (queue group `adrstack-gateway`: one replica answers)",),
        "ask a VEN for a report (oadrCreateReport), or cancel a report request (oadrCancelReport)",
        msg_id="none (not stored)", variants=REPORT_COMMANDS, reply=m.ReportRequestReply,
        transport="core NATS request/reply (not stored)"),
    SubjectDoc(
        lambda s: s.dead_letter(CONSUMER), m.DeadLetter,
        "telemetry (a fact it can never store, or one JetStream gave up on after `ADRSTACK_MAX_DELIVER`)",
        ("api: GraphQL query `deadLetters` (reads the stream by sequence; no subscription)",),
        "a copy of a message a consumer gave up on, with why",
        msg_id="derived from (stream, stream sequence) of the original: stored once whoever copies it"),
)

BUCKETS: tuple[BucketDoc, ...] = (
    BucketDoc("vens_bucket", "gateway (compare-and-set)", "gateway (mirrored by KV watches), scheduler (is a VEN "
              "registered)", "`ven.<ven_id>` VenRecord, `name.<sha256>` name index, `delivery.<ven_id>`, "
              "`reports.<ven_id>`, `opts.<ven_id>`"),
    BucketDoc("events_bucket", "scheduler (the truth of every DR event)", "gateway (mirror), scheduler",
              "`event.<event_id>` DrEvent"),
    BucketDoc("provisioning_bucket", "api (`provisionVen`, `deprovisionVen`)", "gateway, api",
              "`fp.<fingerprint>` → the provisioned VEN name"),
    BucketDoc("groups_bucket", "api (group mutations)", "gateway (mirror), api", "`group.<group_id>` GroupRecord"),
    BucketDoc("programs_bucket", "api (program mutations)", "scheduler (expands occurrences into events), "
              "gateway (market-context targets), api", "`program.<program_id>` ProgramRecord"),
    BucketDoc("nonces_bucket", "gateway (replay protection of signed messages)", "gateway (every replica)",
              "one key per nonce seen; entries expire"),
    BucketDoc("commands_bucket", "scheduler (event commands), api (program edits)", "scheduler, api",
              "`<namespace>.<sha256 of the key>` (namespace `cmd`: event commands, `program`: program "
              "edits) → the result it got; entries expire"),
)


# ----------------------------------------------------------------------------- reading the code


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: ``*`` is one token, a final ``>`` one or more."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


def show(subject: str) -> str:
    return ".".join(PLACEHOLDERS.get(t, t) for t in subject.split("."))


def pattern(doc: SubjectDoc, subjects: Subjects) -> str:
    if not doc.variants:
        return show(doc.subject(subjects))
    heads = {show(doc.subject(subjects, v)).rsplit(".", 1)[0] for v in doc.variants}
    assert len(heads) == 1, f"variants differ before their last token: {heads}"
    return f"{heads.pop()}.{{{','.join(doc.variants)}}}"


def concrete(doc: SubjectDoc, subjects: Subjects) -> str:
    """One real subject of the pattern (to find the stream that captures it)."""
    return doc.subject(subjects, doc.variants[0]) if doc.variants else doc.subject(subjects)


def models_of(doc: SubjectDoc) -> list[tuple[str | None, type[m.Message]]]:
    if isinstance(doc.message, Mapping):
        return list(doc.message.items())
    return [(None, doc.message)]


def type_name(annotation: object, nested: list[type]) -> str:
    """A short readable type; Contract models and enums met are appended to ``nested``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0], nested)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a, nested) for a in args)
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else repr(a) for a in args)
    if origin in (list, tuple, set):
        return f"{origin.__name__}[{', '.join(type_name(a, nested) for a in args)}]"
    if origin is dict:
        return f"dict[{', '.join(type_name(a, nested) for a in args)}]"
    if annotation is type(None):
        return "null"
    if annotation is AwareDatetime:
        return "datetime (ISO 8601, with zone)"
    if annotation is datetime:
        return "datetime (ISO 8601)"
    if annotation is timedelta:
        return "duration (ISO 8601, e.g. PT1H)"
    if annotation is uuid.UUID:
        return "uuid"
    if isinstance(annotation, type) and (issubclass(annotation, BaseModel) or issubclass(annotation, enum.Enum)):
        if annotation not in nested:
            nested.append(annotation)
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def default_text(info) -> str:
    if info.is_required():
        return "required"
    factory = info.default_factory
    if factory is not None:
        names = {uuid.uuid4: "a new uuid4", m.utcnow: "now (UTC)", list: "[]", dict: "{}"}
        return names.get(factory, f"{getattr(factory, '__name__', 'factory')}()")
    value = info.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def doc_line(cls: type) -> str:
    text = inspect.getdoc(cls) or ""
    if cls.__doc__ is None or text == inspect.getdoc(BaseModel) or text == inspect.getdoc(m.Message) \
            or text == inspect.getdoc(m.Contract):
        return ""
    return " ".join(text.split("\n\n")[0].split())


def fields_table(model: type[BaseModel], nested: list[type]) -> list[str]:
    lines = ["| field | type | default |", "|---|---|---|"]
    for name, info in model.model_fields.items():
        lines.append(f"| `{name}` | {cell(type_name(info.annotation, nested))} | {cell(default_text(info))} |")
    return lines


def duration_text(seconds: float | None) -> str:
    if not seconds:
        return "none"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"


def bytes_text(n: int | None) -> str:
    if n is None or n < 0:
        return "no limit"
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def env_name(setting: str) -> str:
    return f"ADRSTACK_{setting.upper()}"


# ----------------------------------------------------------------------------- rendering


def render(settings: CommonSettings | None = None) -> str:
    from .jetstream import DUPLICATE_WINDOW, bucket_configs, dead_letter_stream_config, stream_config

    s = settings or CommonSettings.model_construct()  # defaults, not this machine's environment
    subjects = s.subjects
    streams = [(stream_config(s), "stream_name", "stream_max_age", "stream_max_bytes"),
               (dead_letter_stream_config(s), "dead_letter_stream", "dead_letter_max_age", "dead_letter_max_bytes")]

    def stream_of(subject: str) -> str:
        found = [c.name for c, *_ in streams if any(subject_matches(p, subject) for p in c.subjects)]
        return ", ".join(f"`{n}`" for n in found) or "none"

    out = [
        "# NATS subjects, streams and buckets",
        "",
        "<!-- Generated from shared/ by `adrstack.shared.subject_reference`; do not edit. -->",
        f"<!-- Regenerate: {REGENERATE} -->",
        "",
        f"Generated from `adrstack.shared` (subjects.py, messages.py, settings.py, jetstream.py) with the default "
        f"settings: subject prefix `{s.subject_prefix}` (`ADRSTACK_SUBJECT_PREFIX`). Regenerate with "
        f"`{REGENERATE}`; a unit test fails when this file is stale.",
        "",
        f"Every message is UTF-8 JSON of the pydantic model named, with `id` (uuid), `occurred_at` (ISO 8601, "
        f"UTC) and `schema_version` (now {m.SCHEMA_VERSION}). A message published to JetStream carries its "
        f"`id` as the `Nats-Msg-Id` header, so the stream drops a copy published again within its duplicate "
        f"window ({duration_text(DUPLICATE_WINDOW.total_seconds())}); the *message id* line of each subject "
        f"says how the id is chosen. Ids that become subject tokens (`<ven_id>`, `<event_id>`, `<consumer>`) "
        f"are {TOKEN_RULE}.",
        "",
        "## Summary",
        "",
        "| subject | message | published by | stream |",
        "|---|---|---|---|",
    ]
    for doc in SUBJECTS:
        names = ", ".join(f"`{model.__name__}`" for _, model in models_of(doc))
        if doc.reply is not None:
            names += f" → `{doc.reply.__name__}`"
        out.append(f"| `{pattern(doc, subjects)}` | {names} | {cell(doc.published_by.split(' (')[0])} | "
                   f"{stream_of(concrete(doc, subjects))} |")
    out += ["", "## Subjects", ""]
    nested: list[type] = []
    for doc in SUBJECTS:
        out += [f"### `{pattern(doc, subjects)}`", "", doc.meaning[0].upper() + doc.meaning[1:] + ".", ""]
        out.append(f"- **published by**: {doc.published_by}")
        out.append("- **consumed by**: " + "; ".join(doc.consumed_by))
        out.append(f"- **transport**: {doc.transport}")
        out.append(f"- **stream**: {stream_of(concrete(doc, subjects))}")
        out.append(f"- **message id** (`Nats-Msg-Id`): {doc.msg_id}")
        if doc.variants:
            out.append("- **last token**: " + ", ".join(f"`{v}`" for v in doc.variants))
        if doc.reply is not None:
            out.append(f"- **reply**: [`{doc.reply.__name__}`](#{doc.reply.__name__.lower()})")
        out.append("")
        for variant, model in models_of(doc):
            title = f"`{model.__name__}`" + (f" (`{variant}`)" if variant else "")
            out += [f"#### {title}", ""]
            if (text := doc_line(model)):
                out += [text, ""]
            out += [*fields_table(model, nested), ""]
    replies = [doc.reply for doc in SUBJECTS if doc.reply is not None]
    out += ["## Replies", ""]
    for reply in dict.fromkeys(replies):
        out += [f"### {reply.__name__}", ""]
        if (text := doc_line(reply)):
            out += [text, ""]
        out += [*fields_table(reply, nested), ""]
    out += ["## Nested types", ""]
    i = 0
    while i < len(nested):  # fields_table may append further nested types as it goes
        cls = nested[i]
        i += 1
        out += [f"### {cls.__name__}", ""]
        if (text := doc_line(cls)):
            out += [text, ""]
        if issubclass(cls, enum.Enum):
            out += ["One of " + ", ".join(f'`"{v.value}"`' for v in cls) + ".", ""]
        else:
            out += [*fields_table(cls, nested), ""]
    out += ["## Streams", "",
            "Created and updated by `adrstack migrate` (also run by `adrstack up` and compose's `migrate` job); "
            "services only bind to them.", "",
            "| stream | subjects | storage | retention | max age | max bytes | duplicate window |",
            "|---|---|---|---|---|---|---|"]
    for config, name_field, age_field, bytes_field in streams:
        out.append(
            f"| `{config.name}` (`{env_name(name_field)}`) | {', '.join(f'`{p}`' for p in config.subjects)} | "
            f"{config.storage.value} | {config.retention.value}: age `{env_name(age_field)}`, size "
            f"`{env_name(bytes_field)}` | {duration_text(config.max_age)} | {bytes_text(config.max_bytes)} | "
            f"{duration_text(config.duplicate_window)} |")
    out += ["", "Neither stream sets a replica count: each has one replica, whatever the size of the NATS "
                "cluster (see docs/operations.md).", "",
            "Consumers: telemetry's durable pull consumer (`ADRSTACK_DURABLE_NAME`, default `telemetry`; "
            f"filter `{subjects.everything}`, explicit acks, shared by telemetry replicas) on "
            f"`{s.stream_name}`. The api's subscriptions are core NATS subscriptions (one per subject family "
            "per process), not consumers.", "",
            "## KV buckets", "",
            "Created by `adrstack migrate` (file storage); services only bind to them.", "",
            "| bucket | history | TTL | written by | read by | keys |",
            "|---|---|---|---|---|---|"]
    configs = {c.bucket: c for c in bucket_configs(s)}
    documented = set()
    for b in BUCKETS:
        name = getattr(s, b.setting)
        documented.add(name)
        c = configs[name]
        out.append(f"| `{name}` (`{env_name(b.setting)}`) | {c.history} | {duration_text(c.ttl)} | "
                   f"{cell(b.written_by)} | {cell(b.read_by)} | {cell(b.keys)} |")
    missing = set(configs) - documented
    assert not missing, f"buckets without a BucketDoc: {sorted(missing)}"
    out.append("")
    return "\n".join(out)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
