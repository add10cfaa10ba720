"""The GraphQL schema: queries read Postgres, mutations are scheduler commands over NATS,
subscriptions stream NATS facts. Every resolver is async."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from .errors import ApiError, InvalidInput
from .graphql_types import (
    CreateEventInput,
    Event,
    EventUpdate,
    ModifyEventInput,
    Reading,
    Ven,
    VenAction,
    VenActivity,
    utc,
)
from .scheduler_client import graphql_field
from .state import ApiState
from .store import READINGS_DEFAULT_LIMIT, READINGS_MAX_LIMIT
from .subscriptions import event_transitions, ven_facts
from .validation import cancel_command, check_aware, check_token, create_command, modify_command

log = logging.getLogger(__name__)

# When the scheduler names no field, the error is still about the input a caller can fix.
_DEFAULT_FIELD = {"unknown_ven": "venIds", "conflict": "eventId", "not_found": "eventId"}


def _state(info: strawberry.Info) -> ApiState:
    return info.context["state"]


def _as_graphql(error: ApiError) -> ApiError:
    """A scheduler error with its field spelled as the GraphQL input spells it."""
    return error.renamed(graphql_field(error.field) or _DEFAULT_FIELD.get(error.code))


@strawberry.type
class Query:
    @strawberry.field(description="Registered VENs, by name")
    async def vens(self, info: strawberry.Info) -> list[Ven]:
        return [Ven.from_row(r) for r in await _state(info).store.vens()]

    @strawberry.field
    async def ven(self, info: strawberry.Info, ven_id: str) -> Ven | None:
        check_token(ven_id, "venId", "VEN id")  # e.g. a NUL would make Postgres fail the query
        row = await _state(info).store.ven(ven_id)
        return None if row is None else Ven.from_row(row)

    @strawberry.field(description="DR events, most recently created first")
    async def events(self, info: strawberry.Info) -> list[Event]:
        store = _state(info).store
        rows = await store.events()
        responses = await store.responses([r.event_id for r in rows])
        return [Event.from_row(r, responses.get(r.event_id, [])) for r in rows]

    @strawberry.field
    async def event(self, info: strawberry.Info, event_id: str) -> Event | None:
        check_token(event_id, "eventId", "event id")
        row = await _state(info).store.event(event_id)
        return None if row is None else Event.from_row(row)

    @strawberry.field(
        description=(
            "Readings of one VEN, newest first: since <= at < until, "
            f"at most `limit` (default {READINGS_DEFAULT_LIMIT}, capped at {READINGS_MAX_LIMIT})"
        )
    )
    async def readings(
        self,
        info: strawberry.Info,
        ven_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[Reading]:
        check_token(ven_id, "venId", "VEN id")
        check_aware(since, "since")
        check_aware(until, "until")
        if limit is None:
            limit = READINGS_DEFAULT_LIMIT
        if limit < 1:
            raise InvalidInput("limit", f"{limit} must be at least 1")
        rows = await _state(info).store.readings(
            ven_id, utc(since), utc(until), min(limit, READINGS_MAX_LIMIT)
        )
        return [Reading.from_row(r) for r in rows]


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
            intervals=input.intervals,
            signal_name=input.signal_name,
            signal_type=input.signal_type,
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
        )
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
            vtn_comment=input.vtn_comment,
        )
        return await _send(info, "modify", command)

    @strawberry.mutation
    async def cancel_event(self, info: strawberry.Info, event_id: str) -> Event:
        command = cancel_command(event_id)
        return await _send(info, "cancel", command)

    @strawberry.mutation(description="Cancel a VEN's registration: it is sent oadrCancelPartyRegistration "
                                     "on its next poll and deregistered when it answers")
    async def cancel_ven_registration(self, info: strawberry.Info, ven_id: str) -> VenAction:
        return await _ven_action(info, "cancel", ven_id)

    @strawberry.mutation(description="Ask a VEN to register again: it is sent oadrRequestReregistration "
                                     "on its next poll")
    async def request_ven_reregistration(self, info: strawberry.Info, ven_id: str) -> VenAction:
        return await _ven_action(info, "reregister", ven_id)


async def _ven_action(info: strawberry.Info, action: str, ven_id: str) -> VenAction:
    check_token(ven_id, "venId", "VEN id")
    reply = await _state(info).gateway.request(action, ven_id)
    return VenAction(ven_id=reply.ven_id or ven_id, pending_action=reply.pending_action or action)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Every event transition from now on (optionally one event's)")
    async def event_updates(
        self, info: strawberry.Info, event_id: str | None = None
    ) -> AsyncGenerator[EventUpdate, None]:
        if event_id is not None:
            check_token(event_id, "eventId", "event id")
        async with contextlib.aclosing(event_transitions(_state(info), event_id)) as facts:
            async for fact in facts:
                yield EventUpdate.from_fact(fact)

    @strawberry.subscription(description="Every VEN fact from now on (optionally one VEN's)")
    async def ven_activity(
        self, info: strawberry.Info, ven_id: str | None = None
    ) -> AsyncGenerator[VenActivity, None]:
        if ven_id is not None:
            check_token(ven_id, "venId", "VEN id")
        async with contextlib.aclosing(ven_facts(_state(info), ven_id)) as facts:
            async for fact_ven_id, kind, message in facts:
                yield VenActivity(ven_id=fact_ven_id, kind=kind, occurred_at=utc(message.occurred_at))


class ApiSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # A caller's mistake is answered, not logged as a server failure with a traceback.
        unexpected = []
        for error in errors:
            if isinstance(error.original_error, ApiError) and error.original_error.code != "internal":
                log.info("graphql error for the caller: %s", error.message)
            else:
                unexpected.append(error)
        super().process_errors(unexpected, execution_context)


def build_schema() -> strawberry.Schema:
    return ApiSchema(query=Query, mutation=Mutation, subscription=Subscription)
