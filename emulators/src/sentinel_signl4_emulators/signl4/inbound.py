"""What an inbound SIGNL4 event means: title/text search order, control parameters and status mapping (ref §1.3–§1.5).

Works on already-decoded :class:`~sentinel_signl4_emulators.signl4.entities.RawParameter` lists; decoding the
request body (JSON, form, plain text) is the wire layer's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from sentinel_signl4_emulators.signl4.entities import RawParameter, StatusMapping

__all__ = ["InboundStatus", "control_value", "extract_title_and_text", "inbound_status"]


class InboundStatus(StrEnum):
    """What an inbound event asks for, after ``X-S4-Status`` / query-parameter mapping (ref §1.4, §1.5).

    Deliberately not :class:`sentinel_signl4.domain.enums.SignlStatus`: the emulator mirrors SIGNL4, not our
    client, so a change on our side must not silently change what the emulator accepts.
    """

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    DISCARD = "discard"


# Search orders of support art. 9093057502493 (ref §1.3). The older article 360015830597 also lists X-S4-Subject as
# a title source; it goes last so the current article's order wins.
_TITLE_KEYS = ("title", "subject", "job", "task", "case", "incident", "x-s4-subject")
_TEXT_KEYS = ("text", "message", "messagetext", "description", "body", "content")
_CONTROL_PREFIX = "x-s4-"


def extract_title_and_text(params: Sequence[RawParameter]) -> tuple[str, str, list[RawParameter]]:
    """Title, text and the parameters left to show as tiles (ref §1.3).

    Names match case-insensitively. A value found under one of the listed names stays a parameter too: the support
    article only says that values taken by the *fallback* ("the first parameter values which are a text string")
    are removed "to prevent a duplication of data". The fallback skips ``X-S4-*`` control parameters, which are
    kept as parameters (the official export sample filters them out of ``parameters``, ref §3.3).
    """
    by_name: dict[str, RawParameter] = {}
    for param in params:
        by_name.setdefault(param.name.casefold(), param)

    def named(keys: Sequence[str]) -> RawParameter | None:
        return next((by_name[k] for k in keys if k in by_name and by_name[k].is_text), None)

    title_param, text_param = named(_TITLE_KEYS), named(_TEXT_KEYS)
    used = {id(p) for p in (title_param, text_param) if p is not None}
    fallback = (p for p in params if p.is_text and id(p) not in used
                and not p.name.casefold().startswith(_CONTROL_PREFIX))
    removed: set[int] = set()
    if title_param is None:
        title_param = next(fallback, None)
        if title_param is not None:
            removed.add(id(title_param))
    if text_param is None:
        text_param = next(fallback, None)
        if text_param is not None:
            removed.add(id(text_param))
    remaining = [p for p in params if id(p) not in removed]
    return (title_param.value if title_param else "", text_param.value if text_param else "", remaining)


def control_value(params: Sequence[RawParameter], name: str) -> str | None:
    """The value of a control parameter; names are matched case-insensitively (our reading, unverified)."""
    wanted = name.casefold()
    return next((p.value for p in params if p.name.casefold() == wanted), None)


def inbound_status(params: Sequence[RawParameter], mapping: StatusMapping | None) -> tuple[str | None, InboundStatus]:
    """External id and requested status of an event. Explicit ``X-S4-*`` fields win over the URL's mapping: the
    mapping exists for senders that cannot send them (ref §1.5); which wins when both are present is unverified."""
    external_id = control_value(params, "X-S4-ExternalID")
    raw_status = control_value(params, "X-S4-Status")
    if mapping is not None:
        if external_id is None and mapping.ext_id_param:
            external_id = control_value(params, mapping.ext_id_param)
        if raw_status is None and mapping.ext_status_param:
            mapped = control_value(params, mapping.ext_status_param)
            if mapped is not None:
                return external_id or None, _mapped_status(mapped, mapping)
    if raw_status is None or raw_status.strip() == "":
        # "new" is the default; the official REST sample sends "X-S4-Status": "" for a new alert (ref §1.1).
        return external_id or None, InboundStatus.NEW
    try:
        status = InboundStatus(raw_status.strip().casefold())
    except ValueError:
        # "If the parameter X-S4-Status is present and neither new nor resolved the event gets discarded" (blog July
        # 2020, ref §1.4; "acknowledged" was added later).
        status = InboundStatus.DISCARD
    return external_id or None, status


def _mapped_status(value: str, mapping: StatusMapping) -> InboundStatus:
    """ExtStatusParam value → status (ref §1.5). Comparison is case-insensitive, an unverified leniency."""
    folded = value.casefold()

    def same(option: str | None) -> bool:
        return option is not None and option.casefold() == folded

    if same(mapping.resolved_status):
        return InboundStatus.RESOLVED
    if same(mapping.ack_status):
        return InboundStatus.ACKNOWLEDGED
    if mapping.new_status is not None and not same(mapping.new_status):
        # "If this is set and the value of ExtStatusParam is neither the one specified in NewStatus nor the one in
        # ResolvedStatus, the event is discarded."
        return InboundStatus.DISCARD
    return InboundStatus.NEW
