"""Operators' report requests and cancellations, as NATS request/reply commands
(``<prefix>.cmd.report.<verb>``), beside the registration steps of ``commands``.

The gateway checks a request against the VEN's registered reports (it holds them), records it
on the VEN's report record, and the VEN is sent it on its next poll; a cancellation likewise
(or in the answer to the VEN's next oadrUpdateReport). One replica answers each command.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from nats.aio.msg import Msg
from pydantic import ValidationError

from adrstack.shared.messages import (
    CancelReportCommand,
    CommandError,
    ReportRequestReply,
    RequestReportCommand,
    utcnow,
)

from . import report_requests as rr
from .state import ReportRecord, ReportRequestState, StoreUnavailable, VenStore

log = logging.getLogger(__name__)

Publish = Callable[[str, list[ReportRequestState], ReportRecord], Awaitable[None]]


class ReportCommands:
    def __init__(self, store: VenStore, publish: Publish):
        self.store = store
        self.publish = publish  # the facts of changed requests (Handlers.report_request_facts)

    def callback(self, verb: str):
        answer = self.request if verb == "request" else self.cancel

        async def on_request(msg: Msg) -> None:
            reply = await self._answer(answer, msg.data)
            if msg.reply:
                await msg.respond(reply.to_bytes())

        return on_request

    async def _answer(self, answer, data: bytes) -> ReportRequestReply:
        model = RequestReportCommand if answer == self.request else CancelReportCommand
        try:
            command = model.model_validate_json(data)
        except ValidationError as e:
            return _refused(None, "invalid", _first_error(e), _error_field(e))
        try:
            return await answer(command)
        except rr.Refused as e:
            return _refused(command.ven_id, e.code, e.message, e.field)
        except StoreUnavailable as e:
            log.warning("report command for %s: %s", command.ven_id, e)
            return _refused(command.ven_id, "unavailable", "the VEN store is unavailable")

    async def _record(self, ven_id: str) -> ReportRecord:
        if await self.store.find_ven(ven_id) is None:
            raise rr.Refused("not_found", f"no registered VEN {ven_id}", "ven_id")
        record = self.store.reports.get(ven_id)
        if record is None:  # registered through another replica a moment ago?
            record, _ = await self.store.reports.fetch(ven_id)
        if record is None:
            raise rr.Refused("invalid", "the VEN has registered no reports (oadrRegisterReport)",
                             "report_specifier_id")
        return record

    async def request(self, command: RequestReportCommand) -> ReportRequestReply:
        record = await self._record(command.ven_id)
        new = rr.new_request(command, record, utcnow())
        changed = await self.store.change_requests(command.ven_id, lambda r: None, add=[new])
        if not changed:  # the record went away (deregistered) between the check and the write
            raise rr.Refused("not_found", f"no registered VEN {command.ven_id}", "ven_id")
        await self.publish(command.ven_id, changed, record)
        log.info("report request %s for VEN %s queued for its next poll", new.report_request_id, command.ven_id)
        return ReportRequestReply(ok=True, ven_id=command.ven_id, request=rr.info(changed[0], record))

    async def cancel(self, command: CancelReportCommand) -> ReportRequestReply:
        record = await self._record(command.ven_id)
        if record.request(command.report_request_id) is None:
            raise rr.Refused("not_found", f"VEN {command.ven_id} has no report request "
                                          f"{command.report_request_id[:80]!r}", "report_request_id")
        now = utcnow()
        wanted = command.report_request_id
        changed = await self.store.change_requests(
            command.ven_id,
            lambda r: rr.cancel(r, command.report_to_follow, now) if r.report_request_id == wanted else None)
        record = self.store.report_record(command.ven_id)
        await self.publish(command.ven_id, changed, record)
        current = record.request(wanted)
        if current is None:
            raise rr.Refused("not_found", f"VEN {command.ven_id} has no report request {wanted[:80]!r}",
                             "report_request_id")
        # Cancelling again (or a finished request) changes nothing and answers its state.
        return ReportRequestReply(ok=True, ven_id=command.ven_id, request=rr.info(current, record))


def _refused(ven_id: str | None, code: str, message: str, field: str | None = None) -> ReportRequestReply:
    return ReportRequestReply(ok=False, ven_id=ven_id, error=CommandError(code=code, message=message, field=field))


def _first_error(e: ValidationError) -> str:
    errors = e.errors()
    return str(errors[0].get("msg", "invalid command")) if errors else "invalid command"


def _error_field(e: ValidationError) -> str | None:
    errors = e.errors()
    loc = errors[0].get("loc", ()) if errors else ()
    if not loc:
        return None
    head, rest = str(loc[0]), [str(p) for p in loc[1:]]
    return head + "".join(f"[{p}]" for p in rest)

