"""The incident as the engine sees it, independent of the source API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sentinel_signl4.domain.enums import Classification, ClassificationReason, IncidentStatus, Severity

__all__ = ["Incident", "Owner"]


@dataclass(frozen=True, slots=True)
class Owner:
    object_id: str | None = None
    email: str | None = None
    upn: str | None = None
    name: str | None = None

    @property
    def is_set(self) -> bool:
        return bool(self.object_id or self.email or self.upn)


@dataclass(frozen=True, slots=True)
class Incident:
    """A security incident read from Sentinel (or Graph).

    ``resource_id`` is the full ARM id (or Graph id) and is globally unique; ``name`` is the incident GUID (the last
    path segment). ``raw`` keeps the resource exactly as read, so writes can merge into it without dropping fields.

    ``merged`` says Microsoft Defender merged this incident into another one (Graph: status ``redirected``;
    Sentinel: closed with the ``Redirected`` tag). Which one survived is the source's to tell
    (``IncidentSource.follow_merge``): not every API says.
    """

    resource_id: str
    name: str
    number: int
    title: str
    severity: Severity
    status: IncidentStatus
    created: datetime
    last_modified: datetime
    etag: str | None = None
    description: str = ""
    url: str = ""
    provider_name: str = ""
    provider_url: str = ""
    labels: tuple[str, ...] = ()
    owner: Owner = field(default_factory=Owner)
    classification: Classification | None = None
    classification_reason: ClassificationReason | None = None
    product_names: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    alerts_count: int = 0
    merged: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has_label(self, label: str) -> bool:
        return any(existing.casefold() == label.casefold() for existing in self.labels)
