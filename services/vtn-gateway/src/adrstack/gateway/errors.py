"""OpenADR errors the handlers raise; the server answers them in the request's own response type."""

from __future__ import annotations

# 2.0b response codes (the ones a VTN gives).
OUT_OF_SEQUENCE = 450
NOT_ALLOWED = 451
INVALID_ID = 452
INVALID_DATA = 454
COMPLIANCE_ERROR = 459
REPORT_NOT_SUPPORTED = 461
TARGET_MISMATCH = 462
NOT_REGISTERED_OR_AUTHORIZED = 463
DEPLOYMENT_ERROR_OR_OTHER = 469


class OpenAdrError(Exception):
    """A request we answer with an OpenADR error code. ``description`` goes to the VEN: it must
    never carry parser output or internal detail, only what the VEN can act on."""

    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code = code
        self.description = description


class Unavailable(OpenAdrError):
    """We could not store/publish what the VEN sent: nothing was kept, the VEN should retry."""

    def __init__(self, what: str):
        super().__init__(DEPLOYMENT_ERROR_OR_OTHER, f"temporarily unavailable, not stored, retry: {what}")
