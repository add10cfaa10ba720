"""Subject + bytes -> the fact model it must be, or a reason to terminate the message."""

from __future__ import annotations

from pydantic import ValidationError

from adrstack.shared.messages import VEN_FACTS, EventTransition, Message, decode
from adrstack.shared.subjects import Subjects


class InvalidFact(ValueError):
    """A message that no redelivery can make valid: it is terminated, not retried."""


def decode_fact(subjects: Subjects, subject: str, data: bytes) -> Message:
    try:
        kind, ident, what = subjects.parse(subject)
    except ValueError as e:
        raise InvalidFact(f"unexpected subject {subject!r}") from e
    if kind == "ven":
        model = VEN_FACTS.get(what)
    elif kind == "event":
        model = EventTransition
    else:
        model = None
    if model is None:
        raise InvalidFact(f"no fact model for subject {subject!r}")
    try:
        fact = decode(model, data)
    except ValidationError as e:
        raise InvalidFact(f"{subject}: {e.error_count()} validation error(s): {e.errors()[0].get('msg')}") from e
    # The subject token and the body must agree, or the fact would be filed under the wrong id.
    body_id = fact.event_id if kind == "event" else getattr(fact, "ven_id", None)
    if body_id != ident:
        raise InvalidFact(f"{subject}: body names {body_id!r}, subject names {ident!r}")
    if kind == "event" and fact.transition.value != what:
        raise InvalidFact(f"{subject}: body says transition {fact.transition.value!r}")
    return fact
