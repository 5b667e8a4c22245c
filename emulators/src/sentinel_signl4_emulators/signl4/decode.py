"""Decoding of inbound event bodies (JSON, form, ``Key: value`` text) and the webhook URL's status mapping.

What the decoded parameters *mean* (title/text search, control parameters) is the model's business
(:mod:`sentinel_signl4_emulators.signl4.inbound`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from sentinel_signl4_emulators.signl4.http import folded
from sentinel_signl4_emulators.signl4.model import RawParameter, StatusMapping

__all__ = ["PayloadError", "decode_payload", "status_mapping"]

_MEDIA_JSON = ("application/json", "text/json")
_MEDIA_FORM = "application/x-www-form-urlencoded"


class PayloadError(ValueError):
    """The body is not in the format its Content-Type announces (webhook 400, ref §1.6)."""


_LINE = re.compile(r"^\s*([^:\s][^:]*?)\s*:\s?(.*)$")


def decode_payload(content_type: str | None, body: bytes) -> list[RawParameter]:
    """Flatten an inbound event body into parameters (ref §1.2, §1.3).

    JSON objects are flattened with a dot per nesting level; non-string JSON values keep their JSON text and do
    not count as text for the title/text search. Forms become one parameter per field. ``text/plain`` (or no
    content type) is read as ``Key: value`` lines, the format of SIGNL4's email channel, with indented or
    key-less lines continuing the previous value; a body without such lines becomes the ``Text``.
    XML and multipart bodies, which SIGNL4 also parses, are not emulated: they are read as plain text.
    """
    media = (content_type or "").split(";", 1)[0].strip().casefold()
    if media in _MEDIA_JSON or media.endswith("+json"):
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"The body is not valid JSON: {exc}") from None
        if isinstance(document, dict):
            return list(_flatten(document, ""))
        return [_scalar("Text", document)] if document is not None else []
    text = _decode_text(body)
    if media == _MEDIA_FORM:
        return [RawParameter(k, v) for k, v in parse_qsl(text, keep_blank_values=True)]
    return _parse_lines(text)


def _decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"The body is not UTF-8 text: {exc}") from None


def _flatten(document: Mapping[str, Any], prefix: str) -> list[RawParameter]:
    params: list[RawParameter] = []
    for key, value in document.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            params.extend(_flatten(value, name))
        elif value is not None:
            params.append(_scalar(name, value))
    return params


def _scalar(name: str, value: Any) -> RawParameter:
    if isinstance(value, str):
        return RawParameter(name, value, is_text=True)
    return RawParameter(name, json.dumps(value, separators=(",", ":")), is_text=False)


def _parse_lines(text: str) -> list[RawParameter]:
    pairs: list[list[str]] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match and not line[:1].isspace():
            pairs.append([match.group(1), match.group(2).strip()])
        elif pairs and line.strip():
            pairs[-1][1] = f"{pairs[-1][1]}\n{line.strip()}".strip()
    if not pairs:
        return [RawParameter("Text", text.strip())] if text.strip() else []
    return [RawParameter(name, value) for name, value in pairs]


def status_mapping(request: Request) -> StatusMapping | None:
    """ExtIDParam/ExtIdParam, ExtStatusParam, NewStatus, AckStatus, ResolvedStatus (ref §1.5). Both spellings of
    ExtIDParam appear in the docs, so names are matched case-insensitively."""
    query = folded(request.query_params)
    mapping = StatusMapping(
        ext_id_param=query.get("extidparam"), ext_status_param=query.get("extstatusparam"),
        new_status=query.get("newstatus"), ack_status=query.get("ackstatus"),
        resolved_status=query.get("resolvedstatus"),
    )
    return None if mapping == StatusMapping() else mapping
