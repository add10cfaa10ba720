"""requestReport / cancelReport: the caller's input checked here, the VEN's side (is the report
registered, is the granularity one its data points can sample at) by the gateway, which holds
what each VEN registered and sends the request on the VEN's next poll.

An optional client ``idempotency_key`` makes a retry safe: the same key with the same arguments
returns the first answer and asks nothing of the gateway again; with other arguments it is a
CONFLICT. Keys live in the commands bucket under their own ``report`` namespace
(:mod:`adrstack.shared.idempotency`, as for event commands and program edits).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from nats.aio.client import Client as NATS

from adrstack.shared.idempotency import IdempotencyKeys, KeyReused, StillInProgress, request_digest
from adrstack.shared.messages import (
    MAX_REQUESTED_RIDS,
    CancelReportCommand,
    Message,
    ReportRequestInfo,
    ReportRequestReply,
    RequestReportCommand,
)
from adrstack.shared.subjects import Subjects

from .commands import ask
from .durations import DurationError, parse_duration
from .errors import ApiError, InvalidInput
from .scheduler_client import graphql_field
from .validation import check_aware, check_idempotency_key, check_token, shown

IDEMPOTENCY_NAMESPACE = "report"
MAX_ID_LENGTH = 256
_NOT_DONE = ("unavailable", "internal")  # refusals that did nothing: a retry with the key may still do it


def _check_text_id(value: object, field: str, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH or not value.isprintable():
        raise InvalidInput(field, f"{shown(value)} is not a {what} (1-{MAX_ID_LENGTH} printable characters)")
    return value


def _duration(value: str | None, field: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value, positive=False)
    except DurationError as e:
        raise InvalidInput(field, str(e)) from None


def request_command(ven_id: str, report_specifier_id: str, r_ids: list[str], granularity: str | None,
                    report_back_duration: str | None, start: datetime | None, end: datetime | None
                    ) -> RequestReportCommand:
    check_token(ven_id, "venId", "VEN id")
    _check_text_id(report_specifier_id, "reportSpecifierId", "report specifier id")
    if not r_ids:
        raise InvalidInput("rIds", "at least one rID")
    if len(r_ids) > MAX_REQUESTED_RIDS:
        raise InvalidInput("rIds", f"at most {MAX_REQUESTED_RIDS} rIDs in one request")
    for i, r_id in enumerate(r_ids):
        _check_text_id(r_id, f"rIds[{i}]", "rID")
    return RequestReportCommand(
        ven_id=ven_id, report_specifier_id=report_specifier_id, r_ids=list(r_ids),
        granularity=_duration(granularity, "granularity"),
        report_back_duration=_duration(report_back_duration, "reportBackDuration"),
        start=check_aware(start, "start"), end=check_aware(end, "end"))


def cancel_command(ven_id: str, report_request_id: str, report_to_follow: bool) -> CancelReportCommand:
    check_token(ven_id, "venId", "VEN id")
    _check_text_id(report_request_id, "reportRequestId", "report request id")
    return CancelReportCommand(ven_id=ven_id, report_request_id=report_request_id,
                               report_to_follow=report_to_follow)


class ReportRequests:
    def __init__(self, nc: NATS, subjects: Subjects, timeout: float, keys: IdempotencyKeys | None = None):
        self._nc = nc
        self._subjects = subjects
        self._timeout = timeout
        self._keys = keys  # the commands bucket's "report" namespace; None: keys are not kept

    async def request(self, command: RequestReportCommand, idempotency_key: str | None = None
                      ) -> tuple[str, ReportRequestInfo]:
        return await self._send("request", command, idempotency_key)

    async def cancel(self, command: CancelReportCommand, idempotency_key: str | None = None
                     ) -> tuple[str, ReportRequestInfo]:
        return await self._send("cancel", command, idempotency_key)

    async def _send(self, verb: str, command: Message, idempotency_key: str | None) -> tuple[str, ReportRequestInfo]:
        """(ven_id, the request as the gateway now holds it), or ApiError with the field as GraphQL spells it."""
        key = check_idempotency_key(idempotency_key)

        async def ask_gateway() -> ReportRequestReply:
            return await ask(self._nc, self._subjects.cmd_report(verb), command, ReportRequestReply, self._timeout,
                             "gateway")

        if key is None or self._keys is None:
            reply = await ask_gateway()
        else:
            body = command.model_dump(mode="json", exclude={"id", "occurred_at", "schema_version"})
            try:
                reply = await self._keys.once(
                    key, verb, request_digest(verb, body), ask_gateway,
                    encode=lambda r: r.model_dump_json(), decode=ReportRequestReply.model_validate_json,
                    keep=lambda r: r.ok or r.error is None or r.error.code not in _NOT_DONE)
            except KeyReused:
                raise ApiError("conflict", "this idempotencyKey was used for another request",
                               "idempotencyKey") from None
            except StillInProgress:
                raise ApiError("unavailable", "a request with this idempotencyKey is still in progress; retry later "
                                              "for its result", "idempotencyKey") from None
        if reply.ok and reply.request is not None:
            return reply.ven_id or command.ven_id, reply.request
        if reply.error is None:
            raise ApiError("internal", "the gateway replied without a result or an error")
        raise ApiError(reply.error.code, reply.error.message, graphql_field(reply.error.field))
