"""The dead-letter stream, read for GraphQL ``deadLetters``.

Read from the stream itself, not from a table: a dead letter is written by telemetry exactly
when something is wrong, possibly with Postgres, so it goes to NATS only (one publish, deduped by
its id); the stream's own retention (``dead_letter_max_age``/``_bytes``) bounds it, and its
sequence is a stable cursor. A page is at most DEAD_LETTERS.maximum direct gets.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import strawberry
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from adrstack.shared.messages import DeadLetter as DeadLetterMessage
from adrstack.shared.messages import decode

from .errors import ApiError, InvalidInput
from .graphql_types import utc
from .state import ApiState

# Characters of the original payload shown; the payload itself may be up to NATS's message size.
EXCERPT = 500


@strawberry.type(description="A message a consumer gave up on (invalid, refused by the database, or not "
                             "acknowledged after max_deliver deliveries); never retried again")
class DeadLetter:
    cursor: str = strawberry.field(description="give it as `after` to continue after this one")
    subject: str = strawberry.field(description="the subject the message had")
    reason: str
    consumer: str
    stream: str
    stream_sequence: int = strawberry.field(description="its sequence in the facts stream")
    deliveries: int | None
    at: datetime = strawberry.field(description="when it was dead-lettered")
    published_at: datetime | None = strawberry.field(description="when it was stored in the facts stream")
    payload_bytes: int
    payload_excerpt: str = strawberry.field(description=f"its first {EXCERPT} characters (UTF-8, undecodable "
                                                        "bytes replaced)")

    @classmethod
    def of(cls, seq: int, letter: DeadLetterMessage) -> "DeadLetter":
        try:
            payload = base64.b64decode(letter.payload_b64, validate=True)
        except (binascii.Error, ValueError):
            payload = b""
        return cls(cursor=str(seq), subject=letter.subject, reason=letter.reason, consumer=letter.consumer,
                   stream=letter.stream, stream_sequence=letter.stream_sequence, deliveries=letter.deliveries,
                   at=utc(letter.occurred_at), published_at=utc(letter.published_at), payload_bytes=len(payload),
                   payload_excerpt=payload[:EXCERPT * 4].decode("utf-8", "replace")[:EXCERPT])


def parse_cursor(after: str | None) -> int:
    if after is None:
        return 0
    if not (after.isascii() and after.isdigit() and len(after) <= 19):
        raise InvalidInput("after", "not a cursor (give the cursor of the last dead letter seen)")
    return int(after)


async def page(state: ApiState, after: str | None, limit: int) -> list[DeadLetter]:
    """Oldest first, after the cursor ``after``."""
    start = parse_cursor(after) + 1
    js = state.nc.jetstream()
    name = state.settings.dead_letter_stream
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        raise ApiError("unavailable", "the dead-letter stream does not exist (run `adrstack migrate`)") from None
    seq, last = max(start, info.state.first_seq), info.state.last_seq
    out: list[DeadLetter] = []
    while len(out) < limit and seq <= last:
        try:
            raw = await js.get_msg(name, seq=seq, subject=state.subjects.all_dead_letters, next=True)
        except NotFoundError:
            break
        try:
            out.append(DeadLetter.of(raw.seq, decode(DeadLetterMessage, raw.data or b"")))
        except ValidationError:
            pass  # not one of ours (published by hand to the dead-letter subjects): nothing to show
        seq = raw.seq + 1
    return out
