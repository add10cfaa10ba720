"""VEN groups: the groups KV bucket (``group.<group_id>`` -> GroupRecord), written here with
compare-and-set and read by the gateway, which delivers an event targeting a group to the group's
members as they are at each poll. Members must be VENs the VTN knows (the vens table)."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from adrstack.shared import kv_keys
from adrstack.shared.messages import GroupRecord, utcnow

from .errors import ApiError, InvalidInput
from .store import Store
from .validation import check_group_name, check_token, check_ven_ids, shown

log = logging.getLogger(__name__)

CAS_ATTEMPTS = 5
LIST_TIMEOUT = 10.0
# Members one group may hold: the group is one KV value (1 MiB by default).
MAX_GROUP_VENS = 20_000
# What the JetStream API says when a delete's expected last revision is not the key's.
_WRONG_LAST_SEQUENCE = (10071, 10164)


def _no_group(group_id: str, field: str = "groupId") -> ApiError:
    return ApiError("not_found", f"no group {shown(group_id)}", field)


class Groups:
    def __init__(self, kv: KeyValue, store: Store):
        self.kv = kv
        self.store = store

    async def get(self, group_id: str) -> tuple[GroupRecord | None, int | None]:
        try:
            entry = await self.kv.get(kv_keys.group_key(group_id))
        except (KeyNotFoundError, KeyDeletedError):
            return None, None
        if not entry.value:
            return None, None
        try:
            return GroupRecord.model_validate_json(entry.value), entry.revision
        except ValidationError as e:
            log.error("unreadable group record %s: %s", group_id, e)
            return None, entry.revision

    async def records(self, limit: int) -> list[GroupRecord]:
        """By group id."""
        watcher = await self.kv.watch(kv_keys.GROUP_RECORDS, ignore_deletes=True)
        records = []
        try:
            while (entry := await watcher.updates(timeout=LIST_TIMEOUT)) is not None:
                try:
                    records.append(GroupRecord.model_validate_json(entry.value))
                except ValidationError as e:
                    log.error("unreadable group record %s: %s", entry.key, e)
        finally:
            await watcher.stop()
        records.sort(key=lambda r: r.group_id)
        return records[:limit]

    async def create(self, group_id: str, name: str | None, ven_ids: Iterable[str] | None) -> GroupRecord:
        check_token(group_id, "groupId", "group id")
        check_group_name(name)
        members = await self._known(ven_ids or [], allow_empty=True)
        record = GroupRecord(group_id=group_id, name=name, ven_ids=members, updated_at=utcnow())
        try:
            await self.kv.create(kv_keys.group_key(group_id), record.to_bytes())
        except KeyWrongLastSequenceError:
            raise ApiError("conflict", f"the group {shown(group_id)} exists already", "groupId") from None
        return record

    async def add(self, group_id: str, ven_ids: Iterable[str]) -> GroupRecord:
        check_token(group_id, "groupId", "group id")
        new = await self._known(ven_ids)

        def joined(members: list[str]) -> list[str]:
            present = set(members)
            return members + [v for v in new if v not in present]

        return await self._change(group_id, joined)

    async def remove(self, group_id: str, ven_ids: Iterable[str]) -> GroupRecord:
        check_token(group_id, "groupId", "group id")
        gone = set(check_ven_ids(ven_ids))  # leaving needs no registration: any id may be removed
        return await self._change(group_id, lambda members: [v for v in members if v not in gone])

    async def delete(self, group_id: str) -> GroupRecord | None:
        """None when there was no such group. A group that live events target is not deleted: they
        would silently reach nobody (cancel or retarget them first)."""
        check_token(group_id, "groupId", "group id")
        record, revision = await self.get(group_id)
        if revision is None:
            return None
        live = await self.store.events(5, statuses=["far", "near", "active"], group_id=group_id)
        if live:
            names = ", ".join(shown(row.event_id) for row in live)
            raise ApiError("conflict", f"the group {shown(group_id)} is a target of events not over yet ({names}); "
                                       "cancel them or retarget them first", "groupId")
        try:
            await self.kv.delete(kv_keys.group_key(group_id), last=revision)
        except Exception as e:
            if isinstance(e, KeyWrongLastSequenceError) or getattr(e, "err_code", None) in _WRONG_LAST_SEQUENCE:
                raise ApiError("conflict", f"the group {shown(group_id)} changed meanwhile; try again",
                               "groupId") from None
            raise
        return record

    async def members(self, group_ids: list[str]) -> dict[str, list[str]]:
        """group id -> members, for the groups that exist."""
        out = {}
        for group_id in group_ids:
            record, _ = await self.get(group_id)
            if record is not None:
                out[group_id] = record.ven_ids
        return out

    async def _change(self, group_id: str, change: Callable[[list[str]], list[str]]) -> GroupRecord:
        for _ in range(CAS_ATTEMPTS):
            record, revision = await self.get(group_id)
            if record is None:
                raise _no_group(group_id)
            members = change(list(record.ven_ids))
            if len(members) > MAX_GROUP_VENS:
                raise InvalidInput("venIds", f"a group holds at most {MAX_GROUP_VENS} VENs, not {len(members)}")
            if members == record.ven_ids:
                return record
            updated = record.model_copy(update={"ven_ids": members, "updated_at": utcnow()})
            try:
                await self.kv.update(kv_keys.group_key(group_id), updated.to_bytes(), last=revision)
            except KeyWrongLastSequenceError:
                continue  # changed meanwhile: apply the change to what is there now
            return updated
        raise ApiError("conflict", f"the group {shown(group_id)} kept changing; try again", "groupId")

    async def _known(self, ven_ids: Iterable[str], allow_empty: bool = False) -> list[str]:
        """The ids, checked and without repeats; UNKNOWN_VEN for one the VTN never registered."""
        ids = list(ven_ids)
        if not ids and allow_empty:
            return []
        ids = check_ven_ids(ids)
        if len(ids) > MAX_GROUP_VENS:
            raise InvalidInput("venIds", f"a group holds at most {MAX_GROUP_VENS} VENs, not {len(ids)}")
        known = await self.store.known_vens(ids)
        unknown = [v for v in ids if v not in known]
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise ApiError("unknown_ven", f"unknown VEN {shown(unknown[0])}{more}",
                           f"venIds[{ids.index(unknown[0])}]")
        return ids
