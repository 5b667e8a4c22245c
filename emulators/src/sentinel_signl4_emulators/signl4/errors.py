"""The SIGNL4 model's refusals; the wire layer maps them to HTTP statuses and ErrorResponseContent bodies."""

from __future__ import annotations

__all__ = ["ConflictError", "InvalidRequestError", "NotFoundError", "Signl4Error"]


class Signl4Error(Exception):
    """Base of the model's refusals. ``message`` is SIGNL4's short sentence, ``details`` the specific reason."""

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(details or message)
        self.message = message
        self.details = details


class NotFoundError(Signl4Error):
    """An id (alert, user, team, event, API key owner) does not exist in the caller's subscription."""


class ConflictError(Signl4Error):
    """The alert lifecycle forbids the action (v1 OpenAPI 409, ref §3.2)."""


class InvalidRequestError(Signl4Error):
    """Required information is missing or malformed (v1 OpenAPI 400, ref §3.2)."""
