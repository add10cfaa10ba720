"""The GraphQL schema: queries read Postgres, mutations are scheduler commands over NATS,
subscriptions stream NATS facts; provisioning writes the provisioning KV bucket and tokens the
api_tokens table. Every resolver is async. Who may use which field: permissions."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Annotated, AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from adrstack.shared.messages import REPORT_REQUEST_STATUSES, EventStatus, utcnow
from adrstack.shared.api_tokens import InvalidTokenName, Role, create_token, list_tokens, revoke_token

from . import dead_letters as dead_letter_query
from . import pagination
from . import ven_status as ven_status_query
from .auth import caller_of
from .errors import ApiError, InvalidInput, public_error
from . import readings as readings_query
from .performance import METHOD, event_performance
from .readings import BUCKETS
from . import report_requests as report_commands
from .graphql_limits import graphql_limits
from .graphql_types import (
    ApiRole,
    ApiToken,
    CreateEventInput,
    EventPerformance,
    CreateProgramInput,
    Event,
    EventUpdate,
    OptResponseUpdate,
    Group,
    ModifyEventInput,
    NewApiToken,
    OptSchedule,
    Program,
    ProvisionedVen,
    PushFailure,
    Reading,
    ReportRequest,
    Ven,
    VenAction,
    VenStatus,
    UpdateProgramInput,
    VenActivity,
    VenRegistration,
    readings_of_report,
    utc,
)
from .permissions import RoleCheck
from .programs import check_program_id
from .scheduler_client import graphql_field
from .settings import ApiSettings
from .state import ApiState
from .subscriptions import event_transitions, opt_responses, registrations, report_data, ven_facts
from .targets import check_targets
from .validation import cancel_command, check_aware, check_token, create_command, modify_command, shown

log = logging.getLogger(__name__)

EVENT_STATUSES = tuple(s.value for s in EventStatus)

# When the scheduler names no field, the error is still about the input a caller can fix.
_DEFAULT_FIELD = {"unknown_ven": "venIds", "conflict": "eventId", "not_found": "eventId"}


def _state(info: strawberry.Info) -> ApiState:
    return info.context["state"]


def _as_graphql(error: ApiError) -> ApiError:
    """A scheduler error with its field spelled as the GraphQL input spells it."""
    return error.renamed(graphql_field(error.field) or _DEFAULT_FIELD.get(error.code))


@strawberry.type
class Query:
    @strawberry.field(description=f"Registered VENs, by name: {pagination.VENS.describe()}")
    async def vens(self, info: strawberry.Info, limit: int | None = None) -> list[Ven]:
        store = _state(info).store
        rows = await store.vens(pagination.VENS.limit(limit))
        statuses = await ven_status_query.latest(store, [r.ven_id for r in rows])
        return [Ven.from_row(r, statuses.get(r.ven_id)) for r in rows]

    @strawberry.field(description="A VEN's resource statuses (TELEMETRY_STATUS), newest first (since <= at < "
                                  "until), of one resource if `resourceId` is given; an unknown VEN is NOT_FOUND; "
                                  f"{pagination.VEN_STATUS.describe()}")
    async def ven_status(self, info: strawberry.Info, ven_id: str, since: datetime | None = None,
                         until: datetime | None = None, resource_id: str | None = None,
                         limit: int | None = None) -> list[VenStatus]:
        check_aware(since, "since")
        check_aware(until, "until")
        limit = pagination.VEN_STATUS.limit(limit)
        state = _state(info)
        await readings_query.scope_vens(state, ven_id, None, None)
        if resource_id is not None:
            check_token(resource_id, "resourceId", "resource id")
        rows = await ven_status_query.history(state.store, ven_id, utc(since), utc(until), resource_id, limit)
        return [VenStatus.from_row(r) for r in rows]

    @strawberry.field(description="Messages the stack gave up on (invalid, refused, or not acknowledged after "
                                  "max_deliver deliveries), oldest first, after the cursor `after`: "
                                  f"{pagination.DEAD_LETTERS.describe()}")
    async def dead_letters(self, info: strawberry.Info, after: str | None = None,
                           limit: int | None = None) -> list[dead_letter_query.DeadLetter]:
        return await dead_letter_query.page(_state(info), after, pagination.DEAD_LETTERS.limit(limit))

    @strawberry.field(description="VENs' opt schedules (EiOpt), most recently sent first; withdrawn ones only "
                                  f"with includeCancelled: {pagination.OPT_SCHEDULES.describe()}")
    async def opt_schedules(self, info: strawberry.Info, ven_id: str | None = None, event_id: str | None = None,
                            include_cancelled: bool = False, limit: int | None = None) -> list[OptSchedule]:
        if ven_id is not None:
            check_token(ven_id, "venId", "VEN id")
        if event_id is not None:
            check_token(event_id, "eventId", "event id")
        rows = await _state(info).store.opt_schedules(ven_id, event_id, include_cancelled,
                                                      pagination.OPT_SCHEDULES.limit(limit))
        return [OptSchedule.from_row(r) for r in rows]

    @strawberry.field(description="Pushes to push VENs that did not get through, newest first: "
                                  f"{pagination.PUSH_FAILURES.describe()}")
    async def push_failures(self, info: strawberry.Info, ven_id: str | None = None,
                            limit: int | None = None) -> list[PushFailure]:
        if ven_id is not None:
            check_token(ven_id, "venId", "VEN id")
        rows = await _state(info).store.push_failures(ven_id, pagination.PUSH_FAILURES.limit(limit))
        return [PushFailure.from_row(r) for r in rows]

    @strawberry.field(description="A VEN's report requests (requestReport, and those asked for when it registered "
                                  "its reports), most recently created first; `status` keeps those in any of the "
                                  f"given states; an unknown VEN is NOT_FOUND; {pagination.REPORT_REQUESTS.describe()}")
    async def report_requests(self, info: strawberry.Info, ven_id: str, status: list[str] | None = None,
                              limit: int | None = None) -> list[ReportRequest]:
        check_token(ven_id, "venId", "VEN id")
        for s in status or ():
            if s not in REPORT_REQUEST_STATUSES:
                raise InvalidInput("status", f"{shown(s)} is not one of {', '.join(REPORT_REQUEST_STATUSES)}")
        limit = pagination.REPORT_REQUESTS.limit(limit)
        store = _state(info).store
        if await store.ven(ven_id) is None:
            raise ApiError("not_found", f"no VEN {shown(ven_id)}", "venId")
        return [ReportRequest.from_row(r) for r in await store.report_requests(ven_id, status, limit)]

    @strawberry.field
    async def ven(self, info: strawberry.Info, ven_id: str) -> Ven | None:
        check_token(ven_id, "venId", "VEN id")  # e.g. a NUL would make Postgres fail the query
        store = _state(info).store
        row = await store.ven(ven_id)
        if row is None:
            return None
        return Ven.from_row(row, (await ven_status_query.latest(store, [ven_id])).get(ven_id))

    @strawberry.field(description="DR events, most recently created first: "
                                  f"{pagination.EVENTS.describe()} (or `first`); `status` keeps those in any of "
                                  "the given states, `since`/`until` those whose time overlaps, `venId` those "
                                  "that name the VEN among their targets, `program` the occurrences of that "
                                  "program, `after` continues after that eventId")
    async def events(self, info: strawberry.Info, limit: int | None = None, status: list[str] | None = None,
                     since: datetime | None = None, until: datetime | None = None, ven_id: str | None = None,
                     first: int | None = None, after: str | None = None, program: str | None = None) -> list[Event]:
        store = _state(info).store
        if first is not None and limit is not None:
            raise InvalidInput("first", "give first or limit, not both (they mean the same)")
        page = pagination.EVENTS.limit(first, "first") if first is not None else pagination.EVENTS.limit(limit)
        for s in status or ():
            if s not in EVENT_STATUSES:
                raise InvalidInput("status", f"{shown(s)} is not one of {', '.join(EVENT_STATUSES)}")
        check_aware(since, "since")
        check_aware(until, "until")
        if ven_id is not None:
            check_token(ven_id, "venId", "VEN id")
        if program is not None:
            check_token(program, "program", "program id")
        cursor = None
        if after is not None:
            check_token(after, "after", "event id")
            cursor = await store.event(after)
            if cursor is None:
                raise InvalidInput("after", f"{shown(after)} is not an event (give the last eventId of a page)")
        rows = await store.events(page, statuses=status, since=utc(since), until=utc(until), ven_id=ven_id,
                                  after=cursor, program_id=program)
        ids = [r.event_id for r in rows]
        responses, current = await store.responses(ids), await store.opt_states(ids)
        return [Event.from_row(r, responses.get(r.event_id, []), current.get(r.event_id, [])) for r in rows]

    @strawberry.field
    async def event(self, info: strawberry.Info, event_id: str) -> Event | None:
        check_token(event_id, "eventId", "event id")
        row = await _state(info).store.event(event_id)
        return None if row is None else Event.from_row(row)

    @strawberry.field(description="An event's performance: each targeted VEN's baseline against its measured "
                                  "load and the shed, in kW (the method is in the answer and the README)")
    async def event_performance(self, info: strawberry.Info, event_id: str) -> EventPerformance | None:
        check_token(event_id, "eventId", "event id")
        state = _state(info)
        row = await state.store.event(event_id)
        if row is None:
            return None
        return EventPerformance.of(await event_performance(state, row, utcnow()), METHOD)

    @strawberry.field(
        description="Readings, newest first (since <= at < until): raw, or one row per bucket; of one VEN (an "
                    "unknown one is NOT_FOUND), or over a group's, a program's or every VEN; "
                    f"{pagination.READINGS.describe()}, then after the last row's cursor"
    )
    async def readings(
        self,
        info: strawberry.Info,
        ven_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        group_id: str | None = None,
        program: str | None = None,
        bucket: Annotated[str | None, strawberry.argument(description=f"one of {', '.join(BUCKETS)}: one row per "
                                                          "bucket (value: mean; min, max, sum, count, total)")] = None,
        after: Annotated[str | None, strawberry.argument(description="the cursor of the last row seen")] = None,
    ) -> list[Reading]:
        check_aware(since, "since")
        check_aware(until, "until")
        limit = pagination.READINGS.limit(limit)
        state = _state(info)
        vens = await readings_query.scope_vens(state, ven_id, group_id, program)
        rows = await readings_query.query(state, vens, utc(since), utc(until), bucket, limit, after,
                                    per_ven=ven_id is not None, now=utcnow())
        return [Reading.from_row(r) for r in rows]

    @strawberry.field(description=f"VEN groups, by group id: {pagination.GROUPS.describe()}")
    async def groups(self, info: strawberry.Info, limit: int | None = None) -> list[Group]:
        records = await _state(info).groups.records(pagination.GROUPS.limit(limit))
        return [Group.from_record(r) for r in records]

    @strawberry.field
    async def group(self, info: strawberry.Info, group_id: str) -> Group | None:
        check_token(group_id, "groupId", "group id")
        record, _ = await _state(info).groups.get(group_id)
        return None if record is None else Group.from_record(record)

    @strawberry.field(description=f"Programs, by program id: {pagination.PROGRAMS.describe()}")
    async def programs(self, info: strawberry.Info, limit: int | None = None) -> list[Program]:
        records = await _state(info).programs.records(pagination.PROGRAMS.limit(limit))
        return [Program.from_record(r) for r in records]

    @strawberry.field
    async def program(self, info: strawberry.Info, program_id: str) -> Program | None:
        check_program_id(program_id)
        record, _ = await _state(info).programs.get(program_id)
        return None if record is None else Program.from_record(record)

    @strawberry.field(description=f"Provisioned certificates, by VEN name: {pagination.PROVISIONED_VENS.describe()}"
                                  " (admin)")
    async def provisioned_vens(self, info: strawberry.Info, limit: int | None = None) -> list[ProvisionedVen]:
        records = await _state(info).provisioning.records(pagination.PROVISIONED_VENS.limit(limit))
        return [ProvisionedVen.from_record(r) for r in records]

    @strawberry.field(description=f"API tokens, oldest first, revoked ones too: {pagination.API_TOKENS.describe()}"
                                  " (admin)")
    async def api_tokens(self, info: strawberry.Info, limit: int | None = None) -> list[ApiToken]:
        rows = await list_tokens(_state(info).store.engine, pagination.API_TOKENS.limit(limit))
        return [ApiToken.from_row(r) for r in rows]


async def _send(info: strawberry.Info, verb: str, command) -> Event:
    """Send one event command to the scheduler; its refusal becomes a GraphQL error."""
    scheduler = _state(info).scheduler
    try:
        event = await getattr(scheduler, verb)(command)
    except ApiError as e:
        raise _as_graphql(e) from None
    return Event.from_model(event)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a DR event (a command to the scheduler)")
    async def create_event(self, info: strawberry.Info, input: CreateEventInput) -> Event:
        command = create_command(
            ven_ids=input.ven_ids,
            group_ids=input.group_ids,
            resource_ids=input.resource_ids,
            intervals=input.intervals,
            signal_name=input.signal_name,
            signal_type=input.signal_type,
            units=input.units,
            start_at=input.start_at,
            event_id=input.event_id,
            priority=input.priority,
            market_context=input.market_context,
            response_required=input.response_required,
            vtn_comment=input.vtn_comment,
            notification=input.notification,
            ramp_up=input.ramp_up,
            recovery=input.recovery,
            randomization=input.randomization,
            test_event=input.test_event,
            signals=input.signals,
            market_contexts=input.market_contexts,
            idempotency_key=input.idempotency_key,
            baseline=input.baseline,
        )
        await check_targets(_state(info), command.ven_ids, command.group_ids, command.resource_ids,
                            market_contexts=command.market_contexts)
        return await _send(info, "create", command)

    @strawberry.mutation(description="Change a DR event; its modificationNumber goes up")
    async def modify_event(self, info: strawberry.Info, input: ModifyEventInput) -> Event:
        command = modify_command(
            event_id=input.event_id,
            intervals=input.intervals,
            start_at=input.start_at,
            ven_ids=input.ven_ids,
            priority=input.priority,
            signal_name=input.signal_name,
            signal_type=input.signal_type,
            units=input.units,
            vtn_comment=input.vtn_comment,
            group_ids=input.group_ids,
            resource_ids=input.resource_ids,
            market_context=input.market_context,
            response_required=input.response_required,
            test_event=input.test_event,
            notification=input.notification,
            ramp_up=input.ramp_up,
            recovery=input.recovery,
            randomization=input.randomization,
            signals=input.signals,
            market_contexts=input.market_contexts,
            idempotency_key=input.idempotency_key,
            baseline=input.baseline,
            remove_baseline=input.remove_baseline,
        )
        if command.group_ids or command.resource_ids or command.market_contexts:
            await check_targets(_state(info), command.ven_ids, command.group_ids, command.resource_ids,
                                market_contexts=command.market_contexts)
        return await _send(info, "modify", command)

    @strawberry.mutation(description="Cancel a DR event; idempotencyKey as in createEvent")
    async def cancel_event(self, info: strawberry.Info, event_id: str, idempotency_key: str | None = None) -> Event:
        command = cancel_command(event_id, idempotency_key)
        return await _send(info, "cancel", command)

    @strawberry.mutation(description="Create a VEN group; every member must be a VEN the VTN has registered")
    async def create_group(self, info: strawberry.Info, group_id: str, name: str | None = None,
                           ven_ids: list[str] | None = None) -> Group:
        return Group.from_record(await _state(info).groups.create(group_id, name, ven_ids))

    @strawberry.mutation(description="Add VENs to a group: they get its current and future events")
    async def add_vens_to_group(self, info: strawberry.Info, group_id: str, ven_ids: list[str]) -> Group:
        return Group.from_record(await _state(info).groups.add(group_id, ven_ids))

    @strawberry.mutation(description="Remove VENs from a group: its events are withdrawn from them on their "
                                     "next poll (unless they are targeted otherwise)")
    async def remove_vens_from_group(self, info: strawberry.Info, group_id: str, ven_ids: list[str]) -> Group:
        return Group.from_record(await _state(info).groups.remove(group_id, ven_ids))

    @strawberry.mutation(description="Delete a group; null when there was none. Events naming it reach "
                                     "nobody through it any more")
    async def delete_group(self, info: strawberry.Info, group_id: str) -> Group | None:
        state = _state(info)
        enrolling = [p.program_id for p in await state.programs.records(1000) if group_id in p.group_ids]
        if enrolling:
            raise ApiError("conflict", f"programs enroll this group ({', '.join(enrolling[:5])}); unenroll it first",
                           "groupId")
        record = await state.groups.delete(group_id)
        return None if record is None else Group.from_record(record)

    @strawberry.mutation(description="Create a program; the scheduler creates its events ahead of time")
    async def create_program(self, info: strawberry.Info, input: CreateProgramInput) -> Program:
        record = await _state(info).programs.create(
            program_id=input.program_id, market_context=input.market_context, schedule=input.schedule,
            name=input.name, ven_ids=input.ven_ids, group_ids=input.group_ids, signal_name=input.signal_name,
            signal_type=input.signal_type, level=input.level, priority=input.priority,
            response_required=input.response_required, notification=input.notification,
            refuse_overlaps=input.refuse_overlaps, idempotency_key=input.idempotency_key)
        return Program.from_record(record)

    @strawberry.mutation(description="Change a program (e.g. its schedule): its events not started yet are "
                                     "modified or cancelled to match, started and past ones are left alone")
    async def update_program(self, info: strawberry.Info, input: UpdateProgramInput) -> Program:
        record = await _state(info).programs.update(
            input.program_id, name=input.name, market_context=input.market_context, schedule=input.schedule,
            signal_name=input.signal_name, signal_type=input.signal_type, level=input.level,
            priority=input.priority, response_required=input.response_required, notification=input.notification,
            refuse_overlaps=input.refuse_overlaps, idempotency_key=input.idempotency_key)
        return Program.from_record(record)

    @strawberry.mutation(description="Enroll VENs (registered) and groups (existing) in a program; "
                                     "idempotencyKey as in createProgram")
    async def enroll_in_program(self, info: strawberry.Info, program_id: str, ven_ids: list[str] | None = None,
                                group_ids: list[str] | None = None, idempotency_key: str | None = None) -> Program:
        return Program.from_record(await _state(info).programs.enroll(program_id, ven_ids, group_ids,
                                                                      idempotency_key=idempotency_key))

    @strawberry.mutation(description="Withdraw VENs and groups from a program; idempotencyKey as in createProgram")
    async def unenroll_from_program(self, info: strawberry.Info, program_id: str, ven_ids: list[str] | None = None,
                                    group_ids: list[str] | None = None, idempotency_key: str | None = None) -> Program:
        return Program.from_record(await _state(info).programs.unenroll(program_id, ven_ids, group_ids,
                                                                        idempotency_key=idempotency_key))

    @strawberry.mutation(description="Delete a program; null when there was none. Its events not started yet "
                                     "are cancelled; idempotencyKey as in createProgram")
    async def delete_program(self, info: strawberry.Info, program_id: str,
                             idempotency_key: str | None = None) -> Program | None:
        record = await _state(info).programs.delete(program_id, idempotency_key=idempotency_key)
        return None if record is None else Program.from_record(record)

    @strawberry.mutation(description="Cancel a VEN's registration: it is sent oadrCancelPartyRegistration "
                                     "on its next poll and deregistered when it answers")
    async def cancel_ven_registration(self, info: strawberry.Info, ven_id: str) -> VenAction:
        return await _ven_action(info, "cancel", ven_id)

    @strawberry.mutation(description="Ask a VEN to register again: it is sent oadrRequestReregistration "
                                     "on its next poll")
    async def request_ven_reregistration(self, info: strawberry.Info, ven_id: str) -> VenAction:
        return await _ven_action(info, "reregister", ven_id)

    @strawberry.mutation(description="Ask a VEN for a report it registered: sent as oadrCreateReport on its next "
                                     "poll. Durations are ISO-8601 (granularity: between samples, default the "
                                     "fastest the data points allow; reportBackDuration: between reports, default "
                                     "the granularity); a HISTORY_USAGE report takes start and end and no "
                                     "durations. idempotencyKey as in createEvent")
    async def request_report(self, info: strawberry.Info, ven_id: str, report_specifier_id: str, r_ids: list[str],
                             granularity: str | None = None, report_back_duration: str | None = None,
                             start: datetime | None = None, end: datetime | None = None,
                             idempotency_key: str | None = None) -> ReportRequest:
        command = report_commands.request_command(ven_id, report_specifier_id, r_ids, granularity,
                                                  report_back_duration, start, end)
        ven, request = await _state(info).report_requests.request(command, idempotency_key)
        return ReportRequest.from_info(ven, request)

    @strawberry.mutation(description="Cancel a report request: sent as oadrCancelReport on the VEN's next poll (or "
                                     "with the answer to its next report); reportToFollow lets the VEN send one "
                                     "final report. Cancelling again changes nothing. idempotencyKey as in "
                                     "createEvent")
    async def cancel_report(self, info: strawberry.Info, ven_id: str, report_request_id: str,
                            report_to_follow: bool = False, idempotency_key: str | None = None) -> ReportRequest:
        command = report_commands.cancel_command(ven_id, report_request_id, report_to_follow)
        ven, request = await _state(info).report_requests.cancel(command, idempotency_key)
        return ReportRequest.from_info(ven, request)

    @strawberry.mutation(description="Let the certificate with this fingerprint register as this VEN name "
                                     "(and no other); the same pair again changes nothing (admin)")
    async def provision_ven(self, info: strawberry.Info, ven_name: str, cert_fingerprint: str) -> ProvisionedVen:
        caller = caller_of(info.context["request"])
        record = await _state(info).provisioning.provision(ven_name, cert_fingerprint, caller.label if caller else None)
        return ProvisionedVen.from_record(record)

    @strawberry.mutation(description="Withdraw a certificate's provisioning; null when it had none (admin)")
    async def deprovision_ven(self, info: strawberry.Info, cert_fingerprint: str) -> ProvisionedVen | None:
        record = await _state(info).provisioning.deprovision(cert_fingerprint)
        return None if record is None else ProvisionedVen.from_record(record)

    @strawberry.mutation(description="Create an API token; the answer holds the token, shown only this once (admin)")
    async def create_api_token(self, info: strawberry.Info, role: ApiRole, name: str | None = None) -> NewApiToken:
        try:
            issued = await create_token(_state(info).store.engine, Role(role.value), name)
        except InvalidTokenName as e:
            raise InvalidInput("name", str(e)) from None
        return NewApiToken(token=issued.token, api_token=ApiToken.from_row(issued.row))

    @strawberry.mutation(description="Revoke an API token: it is refused from then on (admin)")
    async def revoke_api_token(self, info: strawberry.Info, id: str) -> ApiToken:
        row = await revoke_token(_state(info).store.engine, id)
        if row is None:
            raise ApiError("not_found", f"no API token with id {shown(id)}", "id")
        return ApiToken.from_row(row)


async def _ven_action(info: strawberry.Info, action: str, ven_id: str) -> VenAction:
    check_token(ven_id, "venId", "VEN id")
    reply = await _state(info).gateway.request(action, ven_id)
    return VenAction(ven_id=reply.ven_id or ven_id, pending_action=reply.pending_action or action)


def _client(info: strawberry.Info) -> object:
    """The websocket a subscription streams to (strawberry's context calls it the request)."""
    return info.context.get("request")


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Every event transition from now on (optionally one event's)")
    async def event_updates(
        self, info: strawberry.Info, event_id: str | None = None
    ) -> AsyncGenerator[EventUpdate, None]:
        if event_id is not None:
            check_token(event_id, "eventId", "event id")
        # aclosing: when the client goes away mid-stream, its hub subscriber goes now, not at GC.
        async with contextlib.aclosing(event_transitions(_state(info), event_id, _client(info))) as facts:
            async for fact in facts:
                yield EventUpdate.from_fact(fact.message)

    @strawberry.subscription(description="Every VEN fact from now on (optionally one VEN's)")
    async def ven_activity(
        self, info: strawberry.Info, ven_id: str | None = None
    ) -> AsyncGenerator[VenActivity, None]:
        if ven_id is not None:
            check_token(ven_id, "venId", "VEN id")
        async with contextlib.aclosing(ven_facts(_state(info), ven_id, _client(info))) as facts:
            async for fact in facts:
                yield VenActivity(ven_id=fact.ident, kind=fact.kind, occurred_at=utc(fact.message.occurred_at))

    @strawberry.subscription(description="Every VEN registration and deregistration from now on")
    async def ven_registrations(self, info: strawberry.Info) -> AsyncGenerator[VenRegistration, None]:
        async with contextlib.aclosing(registrations(_state(info), _client(info))) as facts:
            async for fact in facts:
                yield VenRegistration.from_fact(fact.kind, fact.message)

    @strawberry.subscription(description="Every VEN's answer to an event from now on (optionally one event's)")
    async def opt_responses(
        self, info: strawberry.Info, event_id: str | None = None
    ) -> AsyncGenerator[OptResponseUpdate, None]:
        if event_id is not None:
            check_token(event_id, "eventId", "event id")
        async with contextlib.aclosing(opt_responses(_state(info), event_id, _client(info))) as facts:
            async for fact in facts:
                yield OptResponseUpdate.from_fact(fact.message)

    @strawberry.subscription(description="The readings of each report from now on, one list per report "
                                         "(optionally one VEN's)")
    async def readings(
        self, info: strawberry.Info, ven_id: str | None = None
    ) -> AsyncGenerator[list[Reading], None]:
        if ven_id is not None:
            check_token(ven_id, "venId", "VEN id")
        async with contextlib.aclosing(report_data(_state(info), ven_id, _client(info))) as facts:
            async for fact in facts:
                yield readings_of_report(fact.message)


class ApiSchema(strawberry.Schema):
    """Every error leaves through ``process_errors``: the caller's own mistakes as they are, anything
    else as errors.public_error says (logged here with its details), and in production without
    "did you mean" suggestions, which would name fields introspection no longer shows."""

    def __init__(self, *args, hide_suggestions: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.hide_suggestions = hide_suggestions

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if _is_callers(error):
                log.info("graphql error for the caller: %s", error.message)
                if "code" not in error.extensions:  # graphql-core's own: a document or value it refuses
                    error.extensions = {"code": "INVALID", "field": None, **error.extensions}
            else:
                super().process_errors([error], execution_context)  # logs it with its traceback
                public = public_error(error.original_error)
                error.message, error.extensions, error.original_error = public.message, public.extensions, public
            if self.hide_suggestions and SUGGESTION in error.message:
                error.message = error.message[: error.message.index(SUGGESTION)]


SUGGESTION = " Did you mean "


def _is_callers(error: GraphQLError) -> bool:
    """An error about what the caller sent (a document the API refuses, a value it cannot take)
    rather than one of the API's own failures."""
    original = error.original_error
    # graphql-core wraps a bad variable's ValueError in a GraphQLError of its own.
    return original is None or isinstance(original, (ApiError, GraphQLError))


def build_schema(settings: ApiSettings) -> strawberry.Schema:
    production = settings.api_production
    limits = graphql_limits(max_tokens=settings.graphql_max_tokens, max_depth=settings.graphql_max_depth,
                            max_aliases=settings.graphql_max_aliases, introspection=not production)
    return ApiSchema(
        query=Query, mutation=Mutation, subscription=Subscription,
        extensions=[limits, RoleCheck],
        config=StrawberryConfig(disable_field_suggestions=production),
        hide_suggestions=production,
    )
