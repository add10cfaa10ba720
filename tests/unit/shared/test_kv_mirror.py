"""The KV mirror's bookkeeping: revisions decide, our own writes are read at once, deletes stick."""

from __future__ import annotations

from dataclasses import dataclass

from adrstack.shared.kv_mirror import KvMirror


class _Kv:
    _name = "bucket"


@dataclass
class Entry:
    key: str
    value: bytes | None
    revision: int
    operation: str | None = None


def mirror(changes: list | None = None) -> KvMirror[str]:
    def decode(raw: bytes) -> str | None:
        return None if raw == b"garbage" else raw.decode()

    hook = (lambda key, old, new: changes.append((key, old, new))) if changes is not None else None
    return KvMirror(_Kv(), "ven.", decode, on_change=hook)


def test_newer_revisions_win_and_older_ones_are_ignored():
    m = mirror()
    m._from_watch(Entry("ven.a", b"one", 5), live=True)
    m._from_watch(Entry("ven.a", b"stale", 4), live=True)
    assert m.get("a") == "one" and m.entry("a") == ("one", 5)
    m._from_watch(Entry("ven.a", b"two", 6), live=True)
    assert m.get("a") == "two"
    m._from_watch(Entry("other.a", b"x", 7), live=True)  # not under the prefix
    assert len(m) == 1


def test_our_own_write_is_read_at_once_and_its_echo_changes_nothing():
    changes: list = []
    m = mirror(changes)
    m.noted("a", "mine", 10)
    assert m.get("a") == "mine"
    m._from_watch(Entry("ven.a", b"echo", 10), live=True)  # same revision: already held
    m._from_watch(Entry("ven.a", b"older", 9), live=True)  # in flight before our write
    assert m.get("a") == "mine"
    assert changes == [("a", None, "mine")]


def test_a_local_delete_is_not_undone_by_an_older_update_in_flight():
    m = mirror()
    m._from_watch(Entry("ven.a", b"one", 3), live=True)
    m.noted("a", None, 4)  # we deleted it
    m._from_watch(Entry("ven.a", b"late", 4), live=True)
    assert m.get("a") is None and "a" not in m
    m._from_watch(Entry("ven.a", None, 5, "DEL"), live=True)  # the watch echoes the delete
    assert m.entry("a") == (None, None)
    m._from_watch(Entry("ven.a", b"again", 6), live=True)  # registered again later
    assert m.get("a") == "again"


def test_an_unreadable_value_reads_as_absent():
    m = mirror()
    m._from_watch(Entry("ven.a", b"garbage", 1), live=True)
    assert m.get("a") is None and len(m) == 0


def test_a_snapshot_being_built_does_not_disturb_the_live_entries():
    m = mirror()
    m._from_watch(Entry("ven.a", b"live", 1), live=True)
    m._building = {}
    m._from_watch(Entry("ven.b", b"new", 2), live=False)
    m.noted("c", "mine", 3)  # a write made meanwhile lands in both
    assert m.get("a") == "live" and m.get("b") is None and m.get("c") == "mine"
    m._entries, m._building = m._building, None
    assert m.get("a") is None and m.get("b") == "new" and m.get("c") == "mine"
