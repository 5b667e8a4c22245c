"""What the SIGNL4 client does not take on trust from a read: search results and the two annotation shapes.

Facts are cited from ``shared/reference/signl4-api.md`` ("ref §n"); docs/decisions.md has the table of which SIGNL4
calls are confirmed by an official source and which are derived.

* Search results (``POST /v2/alerts/paged``) are filtered here by the alert's ``externalId`` (v2 alert field, ref
  §3.3 "Get an alert", also in the live v1 spec) and, when the team is known, by ``teamId``: the only official
  sample of the search has no ``externalId`` field, so a server that does not bind it answers with every alert.
* Annotations come from the v1 ``GET /alerts/{id}/annotations`` (``[AlertAnnotationInfo]``, v1 OpenAPI, [OFFICIAL])
  or the v2 ``GET /v2/alerts/{id}/timeline``, whose shape no SIGNL4 source documents; MindCloud's v2-swagger-derived
  reference lists entries ``{annotationtype, creatorId, creatorType, entrytype, id, order, remoteActionId,
  remoteJobId, teamId, text, timestamp, userId}`` ([DERIVED]). A timeline entry counts as an annotation only when its
  ``annotationtype`` is a v2 annotation type (1 text, 2 image, ref §3.3 "Annotate"); ``entrytype`` values are not
  documented and not read. Both are turned into ``{id, text, userId, timestamp}``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from sentinel_signl4.domain.signl4_events import parse_signl4_time
from sentinel_signl4.errors import PermanentError

__all__ = [
    "ANNOTATION_PATHS",
    "AnnotationsPath",
    "AnnotationsUnavailableError",
    "annotation_url_path",
    "annotations_from_timeline",
    "annotations_from_v1",
    "exact_matches",
    "modified_at_or_after",
]

AnnotationsPath = Literal["v1", "v2_timeline"]
#: The order in which an unknown server is probed: the officially documented path first.
ANNOTATION_PATHS: tuple[AnnotationsPath, ...] = ("v1", "v2_timeline")
#: Keys under which a timeline wrapped in an object might carry its entries (the documented shape is a bare list).
_TIMELINE_LIST_KEYS = ("entries", "timelineEntries", "items", "results")


class AnnotationsUnavailableError(PermanentError):
    """Neither annotation path answered for an alert (each 404/405, or an answer of unknown shape)."""


def annotation_url_path(path: AnnotationsPath, quoted_alert_id: str) -> str:
    """The REST path, relative to the API base URL, of one alert's annotations on ``path``."""
    if path == "v1":
        return f"/alerts/{quoted_alert_id}/annotations"
    return f"/v2/alerts/{quoted_alert_id}/timeline"


def _get(item: Mapping[str, Any], name: str) -> Any:
    """A field by name, in any casing: the derived timeline shape spells ``annotationtype`` in lower case while v1
    and v2 objects use camelCase."""
    if name in item:
        return item[name]
    folded = name.casefold()
    return next((value for key, value in item.items() if key.casefold() == folded), None)


def _note(item: Mapping[str, Any]) -> dict[str, Any] | None:
    note_id = _get(item, "id")
    if not isinstance(note_id, str) or not note_id:
        return None
    text = _get(item, "text")
    return {"id": note_id, "text": text if isinstance(text, str) else "", "userId": _get(item, "userId"),
            "timestamp": _get(item, "timestamp")}


def annotations_from_v1(body: Any) -> list[dict[str, Any]] | None:
    """The annotations of a v1 answer; a 204 (``body`` None, "No annotations were found") gives ``[]``. An answer
    that is not a list is not the documented shape: ``None`` tells the caller to try the other path."""
    if body is None:
        return []
    if not isinstance(body, list):
        return None
    return [note for item in body if isinstance(item, dict) and (note := _note(item)) is not None]


def annotations_from_timeline(body: Any) -> list[dict[str, Any]] | None:
    """The annotation entries of a v2 timeline answer; ``None`` when the answer has no recognisable list of
    entries. Entries without a positive ``annotationtype`` (status changes, notifications…) are skipped."""
    if body is None:
        return []
    entries = body
    if isinstance(body, dict):
        entries = next((body[key] for key in _TIMELINE_LIST_KEYS if isinstance(body.get(key), list)), None)
    if not isinstance(entries, list):
        return None
    notes = []
    for item in entries:
        if not isinstance(item, dict):
            continue
        kind = _get(item, "annotationType")
        if isinstance(kind, bool) or not isinstance(kind, int) or kind < 1:
            continue
        note = _note(item)
        if note is not None:
            notes.append(note)
    return notes


def exact_matches(alerts: Iterable[dict[str, Any]], external_id: str,
                  team_ids: Collection[str] = ()) -> list[dict[str, Any]]:
    """The alerts created with exactly ``external_id`` (and, when ``team_ids`` is given, of one of those teams)."""
    return [alert for alert in alerts if alert.get("externalId") == external_id
            and (not team_ids or alert.get("teamId") in team_ids)]


def modified_at_or_after(alerts: Iterable[dict[str, Any]], since: datetime) -> list[dict[str, Any]]:
    """The alerts whose ``lastModified`` is not before ``since``. An alert without a readable ``lastModified`` is
    kept: dropping it could lose a change, keeping it costs one more look (the inbox de-duplicates)."""
    kept = []
    for alert in alerts:
        modified = parse_signl4_time(alert.get("lastModified"))
        if modified is None or modified >= since:
            kept.append(alert)
    return kept
