"""What the JSON-over-HTTPS clients repeat: one attempt of a call, decoding its answer, following ``nextLink``.

Each client keeps its own ``_request`` choke point (token or key, pacing, retry policy); these are its parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from sentinel_signl4.clients.http import classify_response, classify_transport_error
from sentinel_signl4.errors import PermanentError
from sentinel_signl4.redact import Redactor, redact_url

__all__ = ["checked_next_link", "decode_json", "decode_json_object", "origin", "path_segment", "send_once"]


async def send_once(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Mapping[str, Any] | None,
    http_timeout: httpx.Timeout,
    service: str,
    redactor: Redactor,
) -> dict[str, Any]:
    """Send one request; a transport failure or a non-2xx answer raises its typed error, else the JSON object."""
    try:
        response = await http.request(method, url, json=body, headers=headers, timeout=http_timeout)
    except httpx.TransportError as exc:
        raise classify_transport_error(exc, True, service=service, redactor=redactor) from exc
    error = classify_response(response, service, redactor=redactor)
    if error is not None:
        raise error
    return decode_json_object(response, service)


def decode_json(response: httpx.Response, service: str) -> Any:
    """The answer's JSON; :class:`PermanentError` when it is not JSON."""
    try:
        return response.json()
    except ValueError as exc:
        raise PermanentError(f"{_where(response, service)}: unexpected answer (not JSON)",
                             status=response.status_code) from exc


def decode_json_object(response: httpx.Response, service: str) -> dict[str, Any]:
    """The answer's JSON object, ``{}`` for an empty body; :class:`PermanentError` for anything else."""
    if not response.content:
        return {}
    data = decode_json(response, service)
    if not isinstance(data, dict):
        raise PermanentError(f"{_where(response, service)}: unexpected answer (not a JSON object)",
                             status=response.status_code)
    return data


def _where(response: httpx.Response, service: str) -> str:
    return f"{service}: {response.request.method} {redact_url(response.request.url)} -> HTTP {response.status_code}"


def checked_next_link(link: str, expected_origin: tuple[str, str], seen: set[str], service: str) -> str:
    """``link`` if it may be followed (and remember it in ``seen``); :class:`PermanentError` otherwise."""
    # The bearer token goes wherever nextLink points: only ever to the endpoint the client was configured with.
    if origin(link) != expected_origin:
        raise PermanentError(f"{service}: nextLink points to another host ({redact_url(link)}); refused")
    if link in seen:
        raise PermanentError(f"{service}: nextLink repeats ({redact_url(link)}); the listing would not end")
    seen.add(link)
    return link


def origin(url: str) -> tuple[str, str]:
    """``(scheme, host[:port])`` of ``url``, lower-cased."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def path_segment(segment: str) -> str:
    """A path segment, percent-encoded so that an odd id or name can never change the path."""
    return quote(segment, safe="")
