"""Reverse-sync decisions for Microsoft Graph security incidents and alerts (Defender XDR). Pure: no I/O.

The same rules as for Sentinel (``domain/sync.py``), in Graph's vocabulary (``domain/graph_vocab.py``):

* **Acknowledge**: ``active`` (an incident) or ``new`` (an alert) → ``inProgress``; ``assignedTo`` = the responder's
  UPN or e-mail address when it differs. A resolved item is never reopened and its assignee is left alone.
* **Close**: ``resolved`` with the classification + determination our :class:`ClassificationChoice` maps to
  (:func:`graph_vocab.verdict_for`); ``assignedTo`` only when nobody is assigned. Already resolved → nothing (an
  analyst's verdict is kept).

Each function returns the PATCH body: only the properties that change, because Graph's PATCH overwrites what it is
sent (it has no etag) and everything not sent stays as the analyst left it. An empty body means: do not write.

Comments: Graph's comment action appends and gives the caller no id, so a replayed comment would be posted twice.
:func:`comment_marker` derives a short, stable tag from our comment id (``[s4:…]``), appended to the text; before
posting, the caller looks for the tag among the existing comments (:func:`has_comment`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from sentinel_signl4.domain.graph_vocab import GraphAlertStatus, GraphIncidentStatus, verdict_for
from sentinel_signl4.domain.sync import COMMENT_LIMIT, ClassificationChoice

__all__ = [
    "acknowledge_changes",
    "close_changes",
    "comment_marker",
    "comment_text",
    "has_comment",
]

_RESOLVED: Final = "resolved"
_IN_PROGRESS: Final = "inProgress"
_MARKER_HEX: Final = 12  # 48 bits: collisions among one incident's comments are not a practical concern


def _fresh_status(alert: bool) -> str:
    return GraphAlertStatus.NEW.value if alert else GraphIncidentStatus.ACTIVE.value


def _same(a: object, b: str) -> bool:
    return isinstance(a, str) and a.casefold() == b.casefold()


def _is(value: object, status: str) -> bool:
    return isinstance(value, str) and value.casefold() == status.casefold()


def acknowledge_changes(current: Mapping[str, Any], *, assignee: str | None, alert: bool = False) -> dict[str, Any]:
    """The PATCH body that acknowledges ``current`` (an incident, or an alert with ``alert=True``)."""
    status = current.get("status")
    if _is(status, _RESOLVED):
        return {}
    changes: dict[str, Any] = {}
    if _is(status, _fresh_status(alert)):
        changes["status"] = _IN_PROGRESS
    if assignee and not _same(current.get("assignedTo"), assignee):
        changes["assignedTo"] = assignee
    return changes


def close_changes(current: Mapping[str, Any], *, choice: ClassificationChoice,
                  assignee: str | None) -> dict[str, Any]:
    """The PATCH body that resolves ``current`` with ``choice``; ``{}`` when it is resolved already."""
    if _is(current.get("status"), _RESOLVED):
        return {}
    changes: dict[str, Any] = {"status": _RESOLVED, **verdict_for(choice.classification, choice.reason).to_json()}
    assigned = current.get("assignedTo")
    if assignee and not (isinstance(assigned, str) and assigned.strip()):
        changes["assignedTo"] = assignee
    return changes


def comment_marker(comment_id: str) -> str:
    """``[s4:<12 hex>]``: a stable tag for the comment written under ``comment_id``."""
    digest = hashlib.sha256(comment_id.encode("utf-8")).hexdigest()[:_MARKER_HEX]
    return f"[s4:{digest}]"


def comment_text(message: str, comment_id: str) -> str:
    """``message`` (clipped to the comment limit) followed by its marker on a line of its own."""
    marker = comment_marker(comment_id)
    room = COMMENT_LIMIT - len(marker) - 1
    if len(message) > room:
        message = message[: room - 13] + "\n… (clipped)"
    return f"{message}\n{marker}"


def has_comment(comments: Iterable[Any], comment_id: str) -> bool:
    """True when one of ``comments`` (Graph comment objects) carries the marker of ``comment_id``."""
    marker = comment_marker(comment_id)
    return any(isinstance(c, Mapping) and isinstance(c.get("comment"), str) and marker in c["comment"]
               for c in comments)
