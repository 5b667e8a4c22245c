"""What the Sentinel and Graph control planes share: the error plumbing and the readers of a JSON request body.

Control-plane errors are ``{"error": message}`` with status 400 (bad input) or 404 (unknown thing); a refusal of
the service model keeps the service's own ``{"error": {"code", "message"}}`` and status.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import wraps
from typing import Any, Protocol, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "ControlError",
    "Endpoint",
    "control_endpoint",
    "json_body",
    "object_list",
    "object_value",
    "optional_str",
    "optional_time",
    "required_str",
    "string_list",
]

Endpoint = Callable[[Request], Awaitable[Response]]


class ControlError(Exception):
    """Bad input to a control route, answered ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Refusal(Protocol):
    """What a service model's own error carries (``SentinelError``, ``GraphError``)."""

    status: int
    code: str
    message: str


def control_endpoint(handler: Endpoint, service_error: type[Exception]) -> Endpoint:
    """Turn bad input into 400 and unknown things into 404, with ``{"error": message}``; ``service_error`` (the
    model's refusal) into the status and ``{"error": {"code", "message"}}`` the service would send."""

    @wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except ControlError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except service_error as exc:
            refusal = cast(_Refusal, exc)
            return JSONResponse({"error": {"code": refusal.code, "message": refusal.message}},
                                status_code=refusal.status)
        except KeyError as exc:
            return JSONResponse({"error": str(exc.args[0] if exc.args else exc)}, status_code=404)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return run


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object; an empty body is ``{}`` unless ``required``."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise ControlError(400, "a JSON object body is required")
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(400, f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def optional_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ControlError(400, f"{key!r} must be a string")
    return value


def required_str(body: Mapping[str, Any], key: str) -> str:
    value = optional_str(body, key)
    if not value:
        raise ControlError(400, f"{key!r} is required")
    return value


def string_list(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ControlError(400, f"{key!r} must be a list of strings")
    return value


def object_list(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ControlError(400, f"{key!r} must be a list of objects")
    return value


def object_value(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise ControlError(400, f"{key!r} must be an object")
    return value


def optional_time(body: Mapping[str, Any], key: str) -> datetime | None:
    """An ISO-8601 time with a UTC offset (``Z`` allowed), or ``None`` when absent."""
    text = optional_str(body, key)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ControlError(400, f"{key!r} is not an ISO-8601 time: {text!r}") from exc
    if moment.tzinfo is None:
        raise ControlError(400, f"{key!r} needs a time zone (e.g. Z): {text!r}")
    return moment
