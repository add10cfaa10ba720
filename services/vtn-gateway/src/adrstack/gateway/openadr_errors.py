"""OpenADR error responses for what can go wrong behind the gateway.

openleadr turns a raised ``errors.ProtocolError`` into an oadrResponse carrying the
code, so a VEN gets a proper OpenADR answer instead of an HTTP 500.
"""

from __future__ import annotations

import functools
import logging

from openleadr import enums, errors

from adrstack.shared.subjects import TOKEN_RULE, InvalidIdError, is_valid_token

from .registry import StoreUnavailable

log = logging.getLogger(__name__)


class Unavailable(errors.ProtocolError):
    """We could not store/publish what the VEN sent: not a success, the VEN should retry."""

    def __init__(self, description: str):
        super().__init__()
        self.response_code = enums.STATUS_CODES.DEPLOYMENT_ERROR_OR_OTHER_ERROR
        self.response_description = f"temporarily unavailable, not stored, retry: {description}"


def invalid_id(what: str, value: object) -> errors.InvalidIdError:
    shown = repr(value)[:80]
    return errors.InvalidIdError(f"invalid {what} {shown}: must be {TOKEN_RULE}")


def token(payload: dict, field: str, what: str) -> str:
    value = payload.get(field)
    if not is_valid_token(value):
        raise invalid_id(what, value)
    return value


def error_response(message_type: str, error_code: int, error_description: str):
    """Replaces VTNService.error_response: openleadr's version renders oadrRequestEvent errors
    as an oadrDistributeEvent without ``events``, which its own preflight then crashes on."""
    response = {"response_code": error_code, "response_description": error_description}
    if message_type == "oadrRequestEvent":
        return "oadrDistributeEvent", {"response": response, "events": []}
    return "oadrResponse", {"response": response}


def openadr_errors(fn):
    """Map our failures onto OpenADR errors for one handler."""

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        try:
            return await fn(*args, **kwargs)
        except InvalidIdError as e:
            raise invalid_id(e.what, e.value) from e
        except StoreUnavailable as e:
            log.warning("%s: store unavailable: %s", fn.__name__, e)
            raise Unavailable(str(e)) from e

    return wrapper
