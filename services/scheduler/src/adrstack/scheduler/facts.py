"""The facts the scheduler publishes, with ids derived from content.

A transition's Nats-Msg-Id depends only on (event_id, modification_number, transition), so two
replicas (or one replica before and after a restart) publishing the same transition produce one
message in the stream: JetStream drops the second inside its duplicate window.
"""

from __future__ import annotations

from datetime import datetime

from adrstack.shared.messages import DrEvent, EventTransition, Transition, derived_id, utcnow


def transition_id(event: DrEvent, transition: Transition):
    return derived_id(event.event_id, event.modification_number, transition.value)


def transition_fact(event: DrEvent, transition: Transition, now: datetime | None = None) -> EventTransition:
    return EventTransition(
        id=transition_id(event, transition),
        occurred_at=now or utcnow(),
        event_id=event.event_id,
        transition=transition,
        event=event,
    )

