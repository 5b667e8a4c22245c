"""HTTP plumbing of the SIGNL4 emulator: ``ErrorResponseContent`` errors, rate-limit headers, JSON bodies.

Every error body is an ``ErrorResponseContent`` ``{requestId, code, details, message, errors?}`` (ref §3.2).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sentinel_signl4_emulators.signl4.model import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateDecision,
    Signl4Error,
)

__all__ = [
    "HttpError",
    "client_key",
    "error_response",
    "folded",
    "http_error",
    "json_object",
    "model_error",
    "rate_headers",
    "unknown_api_route",
]


class HttpError(Exception):
    def __init__(self, status: int, message: str, details: str | None = None, *, code: int = 0,
                 errors: list[tuple[str, str]] | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(details or message)
        self.status, self.message, self.details, self.code = status, message, details, code
        self.errors, self.headers = errors, dict(headers or {})


def error_response(status: int, message: str, details: str | None = None, *, code: int = 0,
                   errors: list[tuple[str, str]] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An ``ErrorResponseContent`` body (ref §3.2), with a fresh ``requestId`` as in the real 3004 sample."""
    body: dict[str, Any] = {"requestId": str(uuid.uuid4()), "code": code, "details": details, "message": message}
    if errors:
        body["errors"] = [{"message": m, "details": d} for m, d in errors]
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return error_response(exc.status, exc.message, exc.details, code=exc.code, errors=exc.errors,
                          headers=exc.headers)


_MODEL_ERROR_STATUS: dict[type[Signl4Error], int] = {NotFoundError: 404, ConflictError: 409, InvalidRequestError: 400}


async def model_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Signl4Error)
    return error_response(_MODEL_ERROR_STATUS.get(type(exc), 400), exc.message, exc.details)


async def unknown_api_route(request: Request) -> Response:
    return error_response(404, "Not Found", f"No API operation at {request.url.path}.")


def rate_headers(decision: RateDecision) -> dict[str, str]:
    """The throttling headers the webhook "always replies with" (ref §1.7).

    No ``Retry-After``: SIGNL4 documents only ``X-RateLimit-Reset`` (a unix timestamp), so a client must derive
    its wait from that; the emulator does not invent a header the service is not known to send.
    """
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_unix),
    }


def folded(items: Mapping[str, str] | Any) -> dict[str, Any]:
    """Case-insensitive view of query parameters or a JSON object, as ASP.NET model binding reads them."""
    return {str(k).casefold(): v for k, v in items.items()}


async def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise HttpError(400, "Required information could not be found in the request.", "The body is empty.")
        return {}
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, "The submitted body is invalid.", f"The body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise HttpError(400, "The submitted body is invalid.", "The body must be a JSON object.")
    return document


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"
