"""Knobs for SIGNL4 behaviours that no official source settles, so tests can run the connector against each variant.

Set through the control plane (``GET/PUT /_control/signl4/behaviour``) or :meth:`Signl4Model.set_behaviour`;
``reset`` restores the defaults. Facts are cited from ``shared/reference/signl4-api.md`` ("ref §n").

* ``annotation_paths``: where an alert's annotations can be read. The v1 ``GET /alerts/{id}/annotations`` is in
  SIGNL4's own v1 OpenAPI (ref §3.3 "v1 equivalents", [OFFICIAL]); the v2 swagger lists
  ``GET /v2/alerts/{id}/timeline`` (ref §3.3 "Also: …", [DERIVED]); no source shows ``/v2/alerts/{id}/annotations``,
  so that path is never served. The default is ``both``: the v1 API is still published next to v2 (ref §3.1), so
  the most likely state of a real tenant is that both answer.
* ``ignored_search_filters``: body fields of ``POST /v2/alerts/paged`` the server does not bind. The only official
  sample of that call has no ``externalId`` field (ref §3.3, alert-export.js) and spells the change filter
  ``modSince``, so either may be ignored by the live API. An ignored filter matches every alert.
* Hidden categories (:meth:`Signl4Model.hide_categories`): the v1 filter has ``showPersonalHiddenCategories``
  (ref §3.3, [OFFICIAL]) and the official sample sends it ``true``; its name says a user can hide categories from
  their own view. The emulator hides a user's hidden categories from a search unless the flag is ``true``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, get_args

from sentinel_signl4_emulators.signl4.entities import AlertQuery

__all__ = ["ANNOTATION_PATHS", "SEARCH_FILTERS", "AnnotationPaths", "Behaviour"]

AnnotationPaths = Literal["v1", "v2_timeline", "both", "none"]
ANNOTATION_PATHS: tuple[str, ...] = get_args(AnnotationPaths)
#: Search filters a test can make the server ignore, by their v2 swagger names.
SEARCH_FILTERS = ("externalId", "modifiedSince")


@dataclass(frozen=True, slots=True)
class Behaviour:
    annotation_paths: AnnotationPaths = "both"
    ignored_search_filters: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.annotation_paths not in ANNOTATION_PATHS:
            raise ValueError(f"annotation_paths must be one of {', '.join(ANNOTATION_PATHS)}")
        unknown = self.ignored_search_filters - set(SEARCH_FILTERS)
        if unknown:
            raise ValueError(f"unknown search filter(s) {sorted(unknown)}; known: {', '.join(SEARCH_FILTERS)}")

    @property
    def serves_v1_annotations(self) -> bool:
        return self.annotation_paths in ("v1", "both")

    @property
    def serves_v2_timeline(self) -> bool:
        return self.annotation_paths in ("v2_timeline", "both")

    def as_bound(self, query: AlertQuery) -> AlertQuery:
        """``query`` as this server applies it: the ignored filters dropped."""
        changes: dict[str, object] = {}
        if "externalId" in self.ignored_search_filters:
            changes["external_id"] = None
        if "modifiedSince" in self.ignored_search_filters:
            changes["modified_since"] = None
        return dataclasses.replace(query, **changes) if changes else query  # type: ignore[arg-type]
