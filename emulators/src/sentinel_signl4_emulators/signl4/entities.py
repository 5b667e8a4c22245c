"""SIGNL4's vocabulary: status and type codes, ids and timestamps, and the entities the model keeps.

Plain data, no behaviour beyond small derived properties; :mod:`sentinel_signl4_emulators.signl4.model` changes
them. Facts come from ``shared/reference/signl4-api.md`` (cited as "ref §n").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, IntFlag

from sentinel_signl4_emulators.signl4.throttle import RateLimitPolicy

__all__ = [
    "Alert",
    "AlertFlags",
    "AlertPage",
    "AlertQuery",
    "AlertSeverity",
    "AlertStatus",
    "Annotation",
    "AnnotationType",
    "Event",
    "EventStatus",
    "OutboundEventType",
    "OutboundWebhook",
    "Parameter",
    "RawParameter",
    "StatusMapping",
    "Subscription",
    "Team",
    "User",
    "format_utc",
    "new_signl4_id",
]

# --------------------------------------------------------------------------------------------------------------
# Codes (ref §2.2, §3.3)
# --------------------------------------------------------------------------------------------------------------


class AlertStatus(IntFlag):
    """Alert status codes, bit values so the REST filter ``alertStatusCodes`` can be a mask (ref §2.2)."""

    NONE = 0
    OPEN = 1
    ACKNOWLEDGED = 2
    CLOSED = 4
    NO_REPLY = 8
    FAILED = 16
    ERROR = 32


class EventStatus(IntEnum):
    """v2 event status codes (ref §3.3 "Events", [DERIVED] from the v2 swagger)."""

    NONE = 0
    PROCESSING = 1
    SIGNLED = 2
    FILTERED = 3
    RESOLVED = 4
    DISCARDED = 5
    ACKNOWLEDGED = 6


class OutboundEventType(IntEnum):
    """``eventType`` of an outbound webhook notification (ref §2.2)."""

    NEW_SIGNL = 200
    STATUS_CHANGED = 201
    ESCALATED = 202
    ANNOTATED = 203


class AlertSeverity(IntEnum):
    """``0 = Low, 1 = Major, 2 = Critical`` (ref §3.3 "Other useful enums")."""

    LOW = 0
    MAJOR = 1
    CRITICAL = 2


class AlertFlags(IntFlag):
    """Alert flags we can actually set (ref §3.3 "Other useful enums", [DERIVED])."""

    NONE = 0
    HAS_ANNOTATIONS = 2
    HAS_LOCATION_INFO = 8
    ESCALATED_TO_TEAM = 16


class AnnotationType(IntEnum):
    """v2 annotation ``type`` (ref §3.3 "Annotate", [DERIVED])."""

    NONE = 0
    TEXT = 1
    IMAGE = 2


# --------------------------------------------------------------------------------------------------------------
# Ids and timestamps
# --------------------------------------------------------------------------------------------------------------

# .NET DateTime.MaxValue.Ticks and the ticks of the Unix epoch. SIGNL4 ids look like "<19 digits>_<guid>" (ref §1.6);
# the 19-digit part of the published samples is MaxValue.Ticks minus the creation time in ticks: the 202 sample's alert
# id decodes to 2020-01-10 12:25:19, two minutes before its eventRaisedUtc, and the 203 sample's eventId to 27 s
# before its notification. That is the Azure Table Storage idiom that makes row keys sort newest first. Our
# inference, not documented; we reproduce it because paging relies on the order.
_MAX_TICKS = 3_155_378_975_999_999_999
_UNIX_EPOCH_TICKS = 621_355_968_000_000_000


def new_signl4_id(now: datetime) -> str:
    """An id in SIGNL4's ``<19 digits>_<guid>`` format that sorts newest first."""
    delta = now.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    ticks = _UNIX_EPOCH_TICKS + (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    return f"{_MAX_TICKS - ticks:019d}_{uuid.uuid4()}"


def format_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with 7 fractional digits and ``Z``, as in ``eventRaisedUtc`` (ref §2.3)."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}0Z"


# --------------------------------------------------------------------------------------------------------------
# Entities
# --------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Subscription:
    id: str
    plan: str
    limits: RateLimitPolicy


@dataclass(slots=True)
class Team:
    """A team. ``secrets`` maps each inbound webhook secret (team or integration secret, ref §1.1) to the id of the
    event source it stands for."""

    id: str
    subscription_id: str
    name: str
    secrets: dict[str, str] = field(default_factory=dict)
    member_ids: list[str] = field(default_factory=list)
    timezone: str = "UTC"


@dataclass(slots=True)
class User:
    id: str
    subscription_id: str
    name: str
    mail: str
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class RawParameter:
    """One flattened field of an inbound payload. ``is_text`` is true when the payload held a string, which the
    title/text search requires ("if present and their value type is string", ref §1.3)."""

    name: str
    value: str
    is_text: bool = True


@dataclass(frozen=True, slots=True)
class Parameter:
    """An alert parameter. ``type`` is the v1 ``EventParameterTypes`` value; which number means what is not
    documented, so every parameter carries 0."""

    name: str
    value: str
    type: int = 0


@dataclass(slots=True)
class Annotation:
    id: str
    alert_id: str
    team_id: str
    text: str
    timestamp: datetime
    user_id: str | None
    type: AnnotationType = AnnotationType.TEXT


@dataclass(slots=True)
class Alert:
    """A Signl. ``external_id`` is the ``X-S4-ExternalID`` of the event that *created* it: only that id can later
    acknowledge or resolve it (ref §1.4)."""

    id: str
    event_id: str
    team_id: str
    subscription_id: str
    event_source_id: str | None
    external_id: str | None
    title: str
    text: str
    parameters: list[Parameter]
    category: str | None
    severity: AlertSeverity
    status: AlertStatus
    created: datetime
    last_modified: datetime
    required_acknowledgements: int = 1
    flags: AlertFlags = AlertFlags.NONE
    acknowledged_at: datetime | None = None
    acknowledgements: list[str] = field(default_factory=list)
    closed_at: datetime | None = None
    closed_by: str | None = None
    escalated_at: list[datetime] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)

    @property
    def category_id(self) -> str | None:
        """Stable per (team, category name); SIGNL4 categories are configured per team."""
        if self.category is None:
            return None
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"signl4:{self.team_id}:category:{self.category.casefold()}"))


@dataclass(slots=True)
class Event:
    """One received inbound event and what became of it (``GET /v2/events/{id}``, ref §3.3)."""

    id: str
    team_id: str
    subscription_id: str
    event_source_id: str | None
    external_id: str | None
    status: EventStatus
    title: str
    text: str
    parameters: list[Parameter]
    created: datetime
    last_modified: datetime
    severity: AlertSeverity = AlertSeverity.LOW
    target_alert_ids: list[str] = field(default_factory=list)
    acknowledged_alert_ids: list[str] = field(default_factory=list)
    closed_alert_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class OutboundWebhook:
    """A registered outbound webhook (v1 ``WebhookInfo``, ref §2.1). ``team_id`` None means every team."""

    id: str
    subscription_id: str
    team_id: str | None
    name: str
    url: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class StatusMapping:
    """Status mapping from the webhook URL's query parameters (ref §1.5), for senders that cannot add X-S4 fields."""

    ext_id_param: str | None = None
    ext_status_param: str | None = None
    new_status: str | None = None
    ack_status: str | None = None
    resolved_status: str | None = None


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Filters of ``POST /v2/alerts/paged`` (ref §3.3). Empty collections and None mean "no filter"."""

    team_ids: frozenset[str] = frozenset()
    alert_ids: frozenset[str] = frozenset()
    category_ids: frozenset[str] = frozenset()
    external_id: str | None = None
    status_mask: int = 0
    min_created: datetime | None = None
    max_created: datetime | None = None
    modified_since: datetime | None = None
    text: str | None = None
    only_user_created: bool = False
    #: ``showPersonalHiddenCategories``; applied by the model, which knows the searching user's hidden categories.
    show_hidden_categories: bool = False

    def matches(self, alert: Alert) -> bool:
        checks = (
            not self.team_ids or alert.team_id in self.team_ids,
            not self.alert_ids or alert.id in self.alert_ids,
            not self.category_ids or alert.category_id in self.category_ids,
            self.external_id is None or alert.external_id == self.external_id,
            self.status_mask == 0 or bool(alert.status & self.status_mask),
            self.min_created is None or alert.created >= self.min_created,
            self.max_created is None or alert.created <= self.max_created,
            self.modified_since is None or alert.last_modified >= self.modified_since,
            self.text is None or self.text.casefold() in f"{alert.title}\n{alert.text}".casefold(),
            # Every alert here comes from an inbound event; none is "user created" (created in the app).
            not self.only_user_created,
        )
        return all(checks)


@dataclass(frozen=True, slots=True)
class AlertPage:
    """One page of a search: ``next_row_key`` is None on the last page."""

    results: list[Alert]
    next_row_key: str | None
