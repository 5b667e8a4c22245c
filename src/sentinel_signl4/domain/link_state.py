"""What the connector remembers about one incident ⇄ Signl link beyond the ids: who closed it, which outbox row
applies a close, the classification a responder chose, where a Defender merge sent it.

Stored as the link's JSON ``data`` (``to_data``), with ``"v"``; data written before versions existed has none and is
read as version 1 (the same keys). Keys this version does not know are kept as they are (``other``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sentinel_signl4.domain.sync import ClassificationChoice

__all__ = ["LINK_STATE_VERSION", "ClosedBy", "LinkState"]

LINK_STATE_VERSION = 1
_KNOWN = ("v", "closed_by", "close_action", "classification", "merged_into", "merged_from")


class ClosedBy(StrEnum):
    """Who closed a link's Signl or incident first (the other side's echo of it is then ours, not news)."""

    SIGNL4 = "signl4"  # a responder closed the Signl; the close is applied to the incident
    SOURCE = "sentinel"  # the incident was closed in its source (Sentinel or Graph); the Signl was resolved
    MERGE = "merge"  # the incident was merged into another one; the Signl was resolved


@dataclass(frozen=True, slots=True)
class LinkState:
    closed_by: ClosedBy | None = None
    #: Key of the ``update_incident`` row applying a SIGNL4 close; cleared when that close reached the incident.
    close_action: str | None = None
    #: The classification a responder chose with an annotation keyword (``#fp:logic``), used when closing.
    classification: ClassificationChoice | None = None
    #: The incident this link's incident was merged into; ``""`` when merged and the survivor is unknown.
    merged_into: str | None = None
    #: Incidents merged into the one this link names now (the link followed them to their survivor).
    merged_from: tuple[str, ...] = ()
    other: Mapping[str, Any] = field(default_factory=dict)

    @property
    def merge_followed(self) -> bool:
        return self.merged_into is not None

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {**self.other, "v": LINK_STATE_VERSION}
        if self.closed_by is not None:
            data["closed_by"] = self.closed_by.value
        if self.close_action is not None:
            data["close_action"] = self.close_action
        if self.classification is not None:
            data["classification"] = self.classification.to_json()
        if self.merged_into is not None:
            data["merged_into"] = self.merged_into
        if self.merged_from:
            data["merged_from"] = list(self.merged_from)
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> LinkState:
        """Read :meth:`to_data`'s form, also without ``v``. ``ValueError`` for a later version than this one."""
        version = data.get("v", 1)
        if version != LINK_STATE_VERSION:
            raise ValueError(f"link state version {version!r} is not known (this version reads "
                             f"{LINK_STATE_VERSION})")
        other = {k: v for k, v in data.items() if k not in _KNOWN}
        closed_by = data.get("closed_by")
        try:
            by = ClosedBy(closed_by) if closed_by is not None else None
        except ValueError:
            by, other["closed_by"] = None, closed_by  # a value this version does not know: kept, not acted on
        close_action, merged_into, merged_from = (data.get("close_action"), data.get("merged_into"),
                                                  data.get("merged_from"))
        raw_choice = data.get("classification")
        return cls(
            closed_by=by,
            close_action=str(close_action) if close_action else None,
            classification=ClassificationChoice.from_json(raw_choice) if isinstance(raw_choice, Mapping) else None,
            merged_into=str(merged_into) if merged_into is not None else None,
            merged_from=tuple(str(m) for m in merged_from) if isinstance(merged_from, list) else (),
            other=other,
        )
