"""Program edits with a client idempotency key (createProgram, updateProgram, enrollInProgram,
unenrollFromProgram, deleteProgram): a retry with the key returns the first result and changes
nothing, even when the program changed since; the key with another request is a CONFLICT on
idempotencyKey; concurrent retries apply once; program keys never meet event-command keys."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.errors import NoKeysError

from adrstack.scheduler.idempotency import IdempotentCommands, request_digest
from adrstack.shared import kv_keys
from adrstack.shared.messages import CommandReply

from .helpers import gql
from .test_programs import CREATE, ENROLL, UNENROLL, UPDATE, error, new_program, stored

ENROLL_KEYED = ENROLL.replace("$groups: [String!])", "$groups: [String!], $key: String)").replace(
    "groupIds: $groups)", "groupIds: $groups, idempotencyKey: $key)")
UNENROLL_KEYED = UNENROLL.replace("$groups: [String!])", "$groups: [String!], $key: String)").replace(
    "groupIds: $groups)", "groupIds: $groups, idempotencyKey: $key)")
DELETE_KEYED = """mutation($id: String!, $key: String) {
  deleteProgram(programId: $id, idempotencyKey: $key) { programId level updatedAt } }"""


async def revision(nc, api_settings, program_id: str = "peak") -> int:
    kv = await nc.jetstream().key_value(api_settings.programs_bucket)
    return (await kv.get(kv_keys.program_key(program_id))).revision


async def test_a_retried_create_returns_the_first_program_even_after_it_changed(client, known, nc, api_settings):
    first = await gql(client, CREATE, {"input": new_program(idempotencyKey="c-1")})
    assert "errors" not in first, first
    assert "errors" not in await gql(client, UPDATE, {"input": {"programId": "peak", "level": 3}})
    again = await gql(client, CREATE, {"input": new_program(idempotencyKey="c-1")})
    assert again == first  # not "exists already", and the level as it was created
    assert (await stored(nc, api_settings, "peak")).level == 3  # nothing changed by the retry
    other = await gql(client, CREATE, {"input": new_program(level=1, idempotencyKey="c-1")})
    assert error(other) == ("CONFLICT", "idempotencyKey")


async def test_a_retried_update_changes_nothing_more(client, known, nc, api_settings):
    await gql(client, CREATE, {"input": new_program()})
    update = {"programId": "peak", "level": 3, "idempotencyKey": "u-1"}
    first = await gql(client, UPDATE, {"input": update})
    assert "errors" not in first, first
    after_first = await revision(nc, api_settings)
    assert "errors" not in await gql(client, UPDATE, {"input": {"programId": "peak", "level": 1}})
    after_other = await revision(nc, api_settings)
    assert await gql(client, UPDATE, {"input": update}) == first
    assert await revision(nc, api_settings) == after_other > after_first
    assert (await stored(nc, api_settings, "peak")).level == 1
    assert error(await gql(client, UPDATE, {"input": {**update, "level": 2}})) == ("CONFLICT", "idempotencyKey")


async def test_retried_enroll_and_unenroll(client, known, nc, api_settings):
    await gql(client, CREATE, {"input": new_program()})
    enroll = {"id": "peak", "vens": ["ven-b"], "key": "e-1"}
    first = await gql(client, ENROLL_KEYED, enroll)
    assert first["data"]["enrollInProgram"]["venIds"] == ["ven-a", "ven-b"], first
    unenroll = {"id": "peak", "vens": ["ven-b"], "key": "x-1"}
    withdrawn = await gql(client, UNENROLL_KEYED, unenroll)
    assert withdrawn["data"]["unenrollFromProgram"]["venIds"] == ["ven-a"], withdrawn
    # The enroll retried: its first answer, and ven-b stays withdrawn.
    assert await gql(client, ENROLL_KEYED, enroll) == first
    assert (await stored(nc, api_settings, "peak")).ven_ids == ["ven-a"]
    assert "errors" not in await gql(client, ENROLL, {"id": "peak", "vens": ["ven-b"]})
    # The unenroll retried: its first answer, and ven-b stays enrolled.
    assert await gql(client, UNENROLL_KEYED, unenroll) == withdrawn
    assert (await stored(nc, api_settings, "peak")).ven_ids == ["ven-a", "ven-b"]
    assert error(await gql(client, UNENROLL_KEYED, {**unenroll, "vens": ["ven-a"]})) == ("CONFLICT", "idempotencyKey")
    # A key of one kind of edit is not for another.
    assert error(await gql(client, UNENROLL_KEYED, {**enroll})) == ("CONFLICT", "idempotencyKey")


async def test_a_retried_delete_does_not_delete_the_program_created_since(client, known, nc, api_settings):
    await gql(client, CREATE, {"input": new_program()})
    first = await gql(client, DELETE_KEYED, {"id": "peak", "key": "d-1"})
    assert first["data"]["deleteProgram"]["programId"] == "peak", first
    assert "errors" not in await gql(client, CREATE, {"input": new_program(level=3)})
    assert await gql(client, DELETE_KEYED, {"id": "peak", "key": "d-1"}) == first
    assert (await stored(nc, api_settings, "peak")).level == 3


async def test_refusals_are_remembered(client, known, nc, api_settings):
    update = {"programId": "peak", "level": 3, "idempotencyKey": "r-1"}
    assert error(await gql(client, UPDATE, {"input": update})) == ("NOT_FOUND", "programId")
    await gql(client, CREATE, {"input": new_program()})
    # The same key is the same request: its answer stands, though it would now succeed.
    assert error(await gql(client, UPDATE, {"input": update})) == ("NOT_FOUND", "programId")
    assert (await stored(nc, api_settings, "peak")).level == 2


async def test_concurrent_retries_apply_once(client, known, nc, api_settings):
    await gql(client, CREATE, {"input": new_program()})
    before = await revision(nc, api_settings)
    update = {"programId": "peak", "level": 3, "idempotencyKey": "burst"}
    answers = await asyncio.gather(*(gql(client, UPDATE, {"input": update}) for _ in range(6)))
    assert all("errors" not in a for a in answers), answers
    assert len({a["data"]["updateProgram"]["updatedAt"] for a in answers}) == 1
    assert await revision(nc, api_settings) == before + 1


async def test_a_bad_key_is_refused_and_nothing_is_stored(client, known, nc, api_settings):
    data = await gql(client, CREATE, {"input": new_program(idempotencyKey="x" * 201)})
    assert error(data) == ("INVALID", "idempotencyKey")
    assert await stored(nc, api_settings, "peak") is None
    kv = await nc.jetstream().key_value(api_settings.commands_bucket)
    with pytest.raises(NoKeysError):  # nothing was claimed
        await kv.keys()


async def test_program_keys_do_not_meet_event_command_keys(client, known, nc, api_settings):
    assert "errors" not in await gql(client, CREATE, {"input": new_program(idempotencyKey="shared-key")})
    # The scheduler's event commands use the same bucket: the same key is a different claim there.
    commands = IdempotentCommands(await nc.jetstream().key_value(api_settings.commands_bucket))
    reply = CommandReply.failure("invalid", "whatever the event command answered")

    async def run() -> CommandReply:
        return reply

    body = {"ven_ids": ["ven-a"], "intervals": []}
    assert await commands.answer("shared-key", "create", request_digest("create", body), run) == reply
