import pytest

from adrstack.shared.kv_keys import delivery_key, event_key, ven_key, ven_name_key
from adrstack.shared.subjects import InvalidIdError, Subjects, validate_token


def test_fact_subjects_follow_the_contract():
    s = Subjects()
    assert s.ven_registered("ven123") == "openadr.ven.ven123.registered"
    assert s.ven_deregistered("ven123") == "openadr.ven.ven123.deregistered"
    assert s.report_registered("ven123") == "openadr.ven.ven123.report.registered"
    assert s.report_data("ven123") == "openadr.ven.ven123.report.data"
    assert s.opt("ven123") == "openadr.ven.ven123.opt"
    assert s.seen("ven123") == "openadr.ven.ven123.seen"
    assert s.event("event002", "active") == "openadr.event.event002.active"
    assert s.cmd_event("create") == "openadr.cmd.event.create"
    assert s.stream_subjects == ["openadr.ven.>", "openadr.event.>"]


@pytest.mark.parametrize("bad", ["", "a.b", "a*", "a>", "a b", "ven\n1", "é", "x" * 129, None, 5])
def test_ids_that_cannot_be_subject_tokens_are_refused(bad):
    with pytest.raises(InvalidIdError) as info:
        Subjects().ven_registered(bad)
    assert "ven_id" in str(info.value)


def test_valid_tokens_pass_through():
    assert validate_token("ven-1_A", "ven_id") == "ven-1_A"


def test_prefix_is_validated_and_used():
    assert Subjects("t1a2b.openadr").opt("v") == "t1a2b.openadr.ven.v.opt"
    with pytest.raises(ValueError):
        Subjects("bad prefix")


def test_parse_round_trips():
    s = Subjects("tx")
    assert s.parse(s.report_data("v1")) == ("ven", "v1", "report.data")
    assert s.parse(s.event("e1", "completed")) == ("event", "e1", "completed")
    with pytest.raises(ValueError):
        s.parse("other.ven.v1.opt")


def test_unknown_transition_or_verb_is_refused():
    with pytest.raises(ValueError):
        Subjects().event("e1", "exploded")
    with pytest.raises(ValueError):
        Subjects().cmd_event("delete")


def test_kv_keys_validate_ids_and_hash_names():
    assert ven_key("v1") == "ven.v1"
    assert event_key("e1") == "event.e1"
    assert delivery_key("v1") == "delivery.v1"
    with pytest.raises(InvalidIdError):
        ven_key("v.1")
    name_key = ven_name_key("Building 7 / Floor *3*")
    assert name_key.startswith("name.") and name_key == ven_name_key("Building 7 / Floor *3*")
    assert name_key != ven_name_key("Building 8")
