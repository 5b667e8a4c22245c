"""State of the SIGNL4 emulator: subscriptions, teams, users, alerts, events, outbound notifications, throttling.

This module knows SIGNL4's *behaviour* (how an event becomes an alert, the alert lifecycle, which outbound
notification each change raises, how throttling windows work) and nothing about HTTP requests; the wire format of
the inbound webhook and the REST API lives in :mod:`sentinel_signl4.emulators.signl4`. The clock is injected, so
tests decide what "now" is.

Facts come from ``shared/reference/signl4-api.md`` (cited as "ref §n"). Where the reference marks a fact as
derived, sibling-product or open, the code says so next to the choice it made.
"""

from __future__ import annotations

import copy
import functools
import math
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum, IntFlag, StrEnum
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

__all__ = [
    "COMMERCIAL_LIMITS",
    "FREE_LIMITS",
    "INVALID_REQUEST_LIMITS",
    "Alert",
    "AlertFlags",
    "AlertPage",
    "AlertQuery",
    "AlertSeverity",
    "AlertStatus",
    "Annotation",
    "AnnotationType",
    "ConflictError",
    "DeliveryReport",
    "Event",
    "EventStatus",
    "InvalidRequestError",
    "NotFoundError",
    "OutboundEventType",
    "OutboundWebhook",
    "Parameter",
    "RateDecision",
    "RateLimit",
    "RateLimitPolicy",
    "RawParameter",
    "Signl4Error",
    "Signl4Model",
    "StatusMapping",
    "Subscription",
    "Team",
    "User",
    "extract_title_and_text",
    "format_utc",
    "limits_for_plan",
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


class _InboundStatus(StrEnum):
    """What an inbound event asks for, after ``X-S4-Status`` / query-parameter mapping (ref §1.4, §1.5).

    Deliberately not :class:`sentinel_signl4.domain.enums.SignlStatus`: the emulator mirrors SIGNL4, not our
    client, so a change on our side must not silently change what the emulator accepts.
    """

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    DISCARD = "discard"


# --------------------------------------------------------------------------------------------------------------
# Errors (the wire layer maps them to HTTP statuses and ErrorResponseContent bodies)
# --------------------------------------------------------------------------------------------------------------


class Signl4Error(Exception):
    """Base of the model's refusals. ``message`` is SIGNL4's short sentence, ``details`` the specific reason."""

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(details or message)
        self.message = message
        self.details = details


class NotFoundError(Signl4Error):
    """An id (alert, user, team, event, API key owner) does not exist in the caller's subscription."""


class ConflictError(Signl4Error):
    """The alert lifecycle forbids the action (v1 OpenAPI 409, ref §3.2)."""


class InvalidRequestError(Signl4Error):
    """Required information is missing or malformed (v1 OpenAPI 400, ref §3.2)."""


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


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------------------------
# Throttling (ref §1.7)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` requests per ``window``."""

    limit: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= timedelta(0):
            raise ValueError("limit must be >= 1 and window positive")


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """The limits of one subscription: inbound events (webhook and ``/api/v2/events``) and other REST calls."""

    events: tuple[RateLimit, ...]
    rest: tuple[RateLimit, ...]

    def __post_init__(self) -> None:
        if not self.events or not self.rest:
            raise ValueError("events and rest need at least one limit each")


def _tiers(*pairs: tuple[int, int]) -> tuple[RateLimit, ...]:
    return tuple(RateLimit(limit, timedelta(seconds=seconds)) for limit, seconds in pairs)


#: Commercial plan: 150 / 15 s, 600 / min, 36 000 / h, 864 000 / day; REST 150 / 15 s and 36 000 / h (ref §1.7).
COMMERCIAL_LIMITS = RateLimitPolicy(
    events=_tiers((150, 15), (600, 60), (36_000, 3_600), (864_000, 86_400)),
    rest=_tiers((150, 15), (36_000, 3_600)),
)
#: Free plan: 10 / 15 s, 240 / min, 1 200 / h, 4 800 / day; REST 10 / 15 s and 1 200 / h (ref §1.7).
FREE_LIMITS = RateLimitPolicy(
    events=_tiers((10, 15), (240, 60), (1_200, 3_600), (4_800, 86_400)),
    rest=_tiers((10, 15), (1_200, 3_600)),
)
#: Wrong team secret or corrupted payload: "10 per min" (ref §1.7).
INVALID_REQUEST_LIMITS = _tiers((10, 60))

_PLANS = {"commercial": COMMERCIAL_LIMITS, "free": FREE_LIMITS}


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Outcome of one throttling check, with what the ``X-RateLimit-*`` headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset: datetime

    @property
    def reset_unix(self) -> int:
        """``X-RateLimit-Reset`` is a unix timestamp (ref §1.7); rounded up so a client never wakes too early."""
        return math.ceil(self.reset.timestamp())


@dataclass(slots=True)
class _Window:
    start: datetime
    count: int = 0
    blocked_until: datetime | None = None


class _FixedWindows:
    """Fixed windows per (key, tier) with SIGNL4's penalty: "if an account surpasses the throttling limit, event
    receiving is blocked for the same time period (e.g. limit reached within 15 seconds → blocked for 15 seconds)"
    (ref §1.7).

    Unverified choices: a window starts with the first request (not on wall-clock boundaries), the block starts at
    the refused request, and requests refused while blocked do not extend the block. With several tiers the headers
    report the tier with the fewest remaining requests.
    """

    def __init__(self) -> None:
        self._windows: dict[tuple[str, int], _Window] = {}

    def clear(self) -> None:
        self._windows.clear()

    def _current(self, key: str, tiers: Sequence[RateLimit], now: datetime) -> list[_Window]:
        windows = []
        for index, tier in enumerate(tiers):
            window = self._windows.get((key, index))
            expired = window is not None and (
                now >= window.blocked_until if window.blocked_until is not None else now >= window.start + tier.window
            )
            if window is None or expired:
                window = _Window(start=now)
                self._windows[(key, index)] = window
            windows.append(window)
        return windows

    def check(self, key: str, tiers: Sequence[RateLimit], now: datetime, *, consume: bool = True) -> RateDecision:
        """Count one request (unless ``consume`` is false) and say whether it may pass."""
        windows = self._current(key, tiers, now)
        blocked = [(w.blocked_until, t) for w, t in zip(windows, tiers, strict=True) if w.blocked_until is not None]
        if not blocked and consume:
            exhausted = [(w, t) for w, t in zip(windows, tiers, strict=True) if w.count >= t.limit]
            for window, tier in exhausted:
                window.blocked_until = now + tier.window
            blocked = [(w.blocked_until, t) for w, t in exhausted if w.blocked_until is not None]
        if blocked:
            until, tier = max(blocked, key=lambda pair: pair[0])
            return RateDecision(allowed=False, limit=tier.limit, remaining=0, reset=until)
        if consume:
            for window in windows:
                window.count += 1
        remaining, index = min((t.limit - w.count, i) for i, (w, t) in enumerate(zip(windows, tiers, strict=True)))
        tier, window = tiers[index], windows[index]
        return RateDecision(allowed=True, limit=tier.limit, remaining=max(0, remaining),
                            reset=window.start + tier.window)


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


@dataclass(slots=True)
class _Delivery:
    """One notification still owed to one webhook; removed only after a 2xx (at-least-once)."""

    payload: dict[str, Any]
    webhook_id: str
    url: str
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one :meth:`Signl4Model.deliver_outbound` pass did."""

    delivered: int
    failed: int
    duplicates: int
    pending: int


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


# --------------------------------------------------------------------------------------------------------------
# Inbound payload semantics (ref §1.3, §1.4)
# --------------------------------------------------------------------------------------------------------------

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


def _control(params: Sequence[RawParameter], name: str) -> str | None:
    """The value of a control parameter; names are matched case-insensitively (our reading, unverified)."""
    wanted = name.casefold()
    return next((p.value for p in params if p.name.casefold() == wanted), None)


def _inbound_status(params: Sequence[RawParameter], mapping: StatusMapping | None) -> tuple[str | None, _InboundStatus]:
    """External id and requested status of an event. Explicit ``X-S4-*`` fields win over the URL's mapping: the
    mapping exists for senders that cannot send them (ref §1.5); which wins when both are present is unverified."""
    external_id = _control(params, "X-S4-ExternalID")
    raw_status = _control(params, "X-S4-Status")
    if mapping is not None:
        if external_id is None and mapping.ext_id_param:
            external_id = _control(params, mapping.ext_id_param)
        if raw_status is None and mapping.ext_status_param:
            mapped = _control(params, mapping.ext_status_param)
            if mapped is not None:
                return external_id or None, _mapped_status(mapped, mapping)
    if raw_status is None or raw_status.strip() == "":
        # "new" is the default; the official REST sample sends "X-S4-Status": "" for a new alert (ref §1.1).
        return external_id or None, _InboundStatus.NEW
    try:
        status = _InboundStatus(raw_status.strip().casefold())
    except ValueError:
        # "If the parameter X-S4-Status is present and neither new nor resolved the event gets discarded" (blog July
        # 2020, ref §1.4; "acknowledged" was added later).
        status = _InboundStatus.DISCARD
    return external_id or None, status


def _mapped_status(value: str, mapping: StatusMapping) -> _InboundStatus:
    """ExtStatusParam value → status (ref §1.5). Comparison is case-insensitive, an unverified leniency."""
    folded = value.casefold()

    def same(option: str | None) -> bool:
        return option is not None and option.casefold() == folded

    if same(mapping.resolved_status):
        return _InboundStatus.RESOLVED
    if same(mapping.ack_status):
        return _InboundStatus.ACKNOWLEDGED
    if mapping.new_status is not None and not same(mapping.new_status):
        # "If this is set and the value of ExtStatusParam is neither the one specified in NewStatus nor the one in
        # ResolvedStatus, the event is discarded."
        return _InboundStatus.DISCARD
    return _InboundStatus.NEW


# --------------------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(method: Callable[Concatenate[Signl4Model, _P], _R]) -> Callable[Concatenate[Signl4Model, _P], _R]:
    """Serialise a public method: the HTTPS demo server runs in its own thread while tests call the model."""

    @functools.wraps(method)
    def wrapper(self: Signl4Model, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class Signl4Model:
    """Everything SIGNL4 knows, and the only place it changes.

    User actions (:meth:`acknowledge`, :meth:`close`, :meth:`annotate`, :meth:`escalate`) and inbound events change
    alerts by the lifecycle (:class:`ConflictError` when it forbids the change) and queue the matching outbound
    notification. Notifications are kept twice: in a record for :meth:`drain_notifications` (what SIGNL4 *sent*,
    for tests that do not run an HTTP receiver) and in a delivery queue per registered webhook, which
    :meth:`deliver_outbound` empties one 2xx at a time.
    """

    def __init__(
        self,
        clock: Callable[[], datetime] = _utc_now,
        *,
        default_plan: str = "commercial",
        invalid_request_limits: tuple[RateLimit, ...] = INVALID_REQUEST_LIMITS,
        seed: int | None = None,
    ) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._random = random.Random(seed)
        self._initial_limits = limits_for_plan(default_plan)
        self._initial_invalid_limits = invalid_request_limits
        self.reset()

    # -- lifecycle of the model itself ----------------------------------------------------------------------------

    @_locked
    def reset(self) -> None:
        """Forget everything: entities, alerts, notifications, throttling counters and limit overrides."""
        self.subscriptions: dict[str, Subscription] = {}
        self.teams: dict[str, Team] = {}
        self.users: dict[str, User] = {}
        self.api_keys: dict[str, str] = {}  # key -> subscription id
        self.webhooks: dict[str, OutboundWebhook] = {}
        self.alerts: dict[str, Alert] = {}
        self.events: dict[str, Event] = {}
        self._secrets: dict[str, str] = {}  # webhook secret -> team id
        self._recorded: list[dict[str, Any]] = []
        self._deliveries: list[_Delivery] = []
        self._event_windows = _FixedWindows()
        self._rest_windows = _FixedWindows()
        self._invalid_windows = _FixedWindows()
        self.default_limits = self._initial_limits
        self.invalid_request_limits = self._initial_invalid_limits

    def now(self) -> datetime:
        """The injected clock, normalised to UTC (a naive datetime is taken to be UTC)."""
        moment = self._clock()
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    # -- set-up (control plane) ----------------------------------------------------------------------------------

    @_locked
    def create_subscription(self, subscription_id: str | None = None, *, plan: str | None = None) -> Subscription:
        """A subscription (account) with the throttling limits of ``plan`` ("commercial" or "free")."""
        sid = subscription_id or str(uuid.uuid4())
        if sid in self.subscriptions:
            raise ConflictError("Subscription already exists.", f"A subscription with ID {sid} already exists.")
        limits = limits_for_plan(plan) if plan else self.default_limits
        subscription = Subscription(id=sid, plan=plan or "commercial", limits=limits)
        self.subscriptions[sid] = subscription
        return subscription

    @_locked
    def create_team(self, subscription_id: str, name: str, *, team_id: str | None = None,
                    secret: str | None = None) -> Team:
        """A team with one inbound webhook secret (generated unless given)."""
        self._subscription(subscription_id)
        tid = team_id or str(uuid.uuid4())
        if tid in self.teams:
            raise ConflictError("Team already exists.", f"A team with ID {tid} already exists.")
        team = Team(id=tid, subscription_id=subscription_id, name=name)
        self.teams[tid] = team
        self._add_secret(team, secret)
        return team

    @_locked
    def add_team_secret(self, team_id: str, secret: str | None = None) -> str:
        """Another inbound webhook secret for a team (an "integration secret", ref §1.1)."""
        return self._add_secret(self._team(team_id), secret)

    def _add_secret(self, team: Team, secret: str | None) -> str:
        value = secret or uuid.uuid4().hex[:8]
        if value in self._secrets:
            raise ConflictError("Secret already in use.", "The webhook secret is already assigned to a team.")
        team.secrets[value] = str(uuid.uuid4())
        self._secrets[value] = team.id
        return value

    @_locked
    def create_user(self, subscription_id: str, name: str, mail: str, *, user_id: str | None = None,
                    team_ids: Iterable[str] = ()) -> User:
        self._subscription(subscription_id)
        uid = user_id or str(uuid.uuid4())
        if uid in self.users:
            raise ConflictError("User already exists.", f"A user with ID {uid} already exists.")
        if any(u.mail.casefold() == mail.casefold() for u in self.users.values()):
            raise ConflictError("User already exists.", f"A user with mail address {mail} already exists.")
        user = User(id=uid, subscription_id=subscription_id, name=name, mail=mail)
        self.users[uid] = user
        for team_id in team_ids:
            self.add_member(team_id, uid)
        return user

    @_locked
    def add_member(self, team_id: str, user_id: str) -> None:
        team, user = self._team(team_id), self._user_by_id(user_id)
        if user.subscription_id != team.subscription_id:
            raise InvalidRequestError("User and team belong to different subscriptions.")
        if user.id not in team.member_ids:
            team.member_ids.append(user.id)

    @_locked
    def create_api_key(self, subscription_id: str, key: str | None = None) -> str:
        """An API key for the ``X-S4-Api-Key`` header; keys are per subscription (ref §3.1)."""
        self._subscription(subscription_id)
        value = key or uuid.uuid4().hex
        if value in self.api_keys:
            raise ConflictError("API key already exists.")
        self.api_keys[value] = subscription_id
        return value

    @_locked
    def register_webhook(self, subscription_id: str, url: str, *, team_id: str | None = None,
                         name: str = "Webhook (Outbound)") -> OutboundWebhook:
        """Register an outbound webhook; ``team_id`` None receives every team's notifications.

        SIGNL4 refuses a team's own inbound webhook as target, "to prevent infinite data loops" (ref §2.1).
        """
        self._subscription(subscription_id)
        if team_id is not None and self._team(team_id).subscription_id != subscription_id:
            raise InvalidRequestError("Team belongs to another subscription.")
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidRequestError("Invalid webhook address.", f"{url!r} is not an absolute http(s) URL.")
        path = parsed.path.rstrip("/")
        for team in self.teams.values():
            if team.subscription_id == subscription_id and any(path.endswith(f"/webhook/{s}") for s in team.secrets):
                raise InvalidRequestError("Invalid webhook address.",
                                          "The inbound webhook of a team cannot be registered as outbound webhook.")
        webhook = OutboundWebhook(id=str(uuid.uuid4()), subscription_id=subscription_id, team_id=team_id,
                                  name=name, url=url)
        self.webhooks[webhook.id] = webhook
        return webhook

    @_locked
    def set_rate_limits(self, policy: RateLimitPolicy, subscription_id: str | None = None) -> None:
        """Replace the limits of one subscription, or of every existing and future one; counters start over."""
        if subscription_id is None:
            self.default_limits = policy
            targets = list(self.subscriptions.values())
        else:
            targets = [self._subscription(subscription_id)]
        for subscription in targets:
            subscription.limits = policy
        self._event_windows.clear()
        self._rest_windows.clear()

    @_locked
    def set_invalid_request_limits(self, tiers: tuple[RateLimit, ...]) -> None:
        if not tiers:
            raise ValueError("at least one limit is needed")
        self.invalid_request_limits = tiers
        self._invalid_windows.clear()

    @_locked
    def limits_of(self, subscription_id: str | None = None) -> RateLimitPolicy:
        """The limits of a subscription, or those new subscriptions get."""
        return self.default_limits if subscription_id is None else self._subscription(subscription_id).limits

    # -- look-ups ------------------------------------------------------------------------------------------------

    @_locked
    def team_for_secret(self, secret: str) -> Team | None:
        team_id = self._secrets.get(secret)
        return self.teams[team_id] if team_id is not None else None

    @_locked
    def team_for_reference(self, subscription_id: str, reference: str) -> Team | None:
        """``/v2/events/{webhookIdOrTeamId}``: a team id or a webhook secret of the caller's subscription."""
        team = self.teams.get(reference) or self.team_for_secret(reference)
        return team if team is not None and team.subscription_id == subscription_id else None

    @_locked
    def subscription_for_api_key(self, key: str) -> str | None:
        return self.api_keys.get(key)

    @_locked
    def find_user(self, subscription_id: str, id_or_mail: str) -> User:
        """A user by id or (case-insensitive) mail address, as ``GET /v2/users/{userId}`` allows (ref §3.3)."""
        folded = id_or_mail.casefold()
        for user in self.users.values():
            if user.subscription_id == subscription_id and (user.id == id_or_mail or user.mail.casefold() == folded):
                return user
        raise NotFoundError("User not found.", f"A user with ID or mail {id_or_mail} was not found.")

    @_locked
    def list_users(self, subscription_id: str) -> list[User]:
        return [u for u in self.users.values() if u.subscription_id == subscription_id]

    @_locked
    def list_teams(self, subscription_id: str) -> list[Team]:
        return [t for t in self.teams.values() if t.subscription_id == subscription_id]

    @_locked
    def get_team(self, team_id: str) -> Team:
        return self._team(team_id)

    @_locked
    def list_webhooks(self) -> list[OutboundWebhook]:
        return list(self.webhooks.values())

    @_locked
    def get_alert(self, alert_id: str, subscription_id: str | None = None) -> Alert:
        alert = self.alerts.get(alert_id)
        if alert is None or (subscription_id is not None and alert.subscription_id != subscription_id):
            raise NotFoundError("No alert with id was found.", f"An alert with ID {alert_id} was not found.")
        return alert

    @_locked
    def get_event(self, event_id: str, subscription_id: str | None = None) -> Event:
        event = self.events.get(event_id)
        if event is None or (subscription_id is not None and event.subscription_id != subscription_id):
            raise NotFoundError("Event not found.", f"An event with ID {event_id} was not found.")
        return event

    @_locked
    def list_alerts(self, *, external_id: str | None = None, team_id: str | None = None) -> list[Alert]:
        """Alerts newest first, optionally only those created with ``external_id`` / for ``team_id``."""
        return sorted(
            (a for a in self.alerts.values()
             if (external_id is None or a.external_id == external_id) and (team_id is None or a.team_id == team_id)),
            key=lambda a: a.id,
        )

    # -- throttling -----------------------------------------------------------------------------------------------

    @_locked
    def check_event_limit(self, subscription_id: str, *, consume: bool = True) -> RateDecision:
        """Count one inbound event of a subscription (ref §1.7)."""
        return self._event_windows.check(subscription_id, self._subscription(subscription_id).limits.events,
                                         self.now(), consume=consume)

    @_locked
    def check_rest_limit(self, subscription_id: str) -> RateDecision:
        """Count one REST call other than ``/v2/events`` (ref §1.7)."""
        return self._rest_windows.check(subscription_id, self._subscription(subscription_id).limits.rest, self.now())

    @_locked
    def check_invalid_limit(self, client: str, *, consume: bool = True) -> RateDecision:
        """Count one request with a wrong secret or a corrupted payload. Nothing says what SIGNL4 keys this limit
        by; a wrong secret names no subscription, so the emulator keys it by the caller's address."""
        return self._invalid_windows.check(client, self.invalid_request_limits, self.now(), consume=consume)

    # -- inbound events (ref §1.3–§1.5) ---------------------------------------------------------------------------

    @_locked
    def raise_event(self, team_id: str, params: Sequence[RawParameter], *, mapping: StatusMapping | None = None,
                    event_source_id: str | None = None) -> Event:
        """Process one inbound event for a team and return it (its ``id`` is the webhook's ``eventId``).

        ``new`` always creates an alert: SIGNL4 does not de-duplicate on ``X-S4-ExternalID``; the id only
        "correlate[s] multiple events to one incident" for acknowledge/resolve, and a second ``new`` raises a
        second Signl (ref §1.4, §6). ``acknowledged``/``resolved`` act on the alerts of this team that were
        *created* with that external id ("It is only possible to acknowledge/resolve an alert with a provided
        external id that initially triggered it", ref §1.4). Anything else is discarded (event status 5).
        """
        team = self._team(team_id)
        now = self.now()
        external_id, status = _inbound_status(params, mapping)
        title, text, remaining = extract_title_and_text(params)
        event = Event(
            id=new_signl4_id(now), team_id=team.id, subscription_id=team.subscription_id,
            event_source_id=event_source_id, external_id=external_id, status=EventStatus.PROCESSING,
            title=title, text=text, parameters=[Parameter(p.name, p.value) for p in remaining],
            created=now, last_modified=now,
        )
        self.events[event.id] = event
        if status is _InboundStatus.NEW:
            alert = self._create_alert(team, event, params)
            event.target_alert_ids.append(alert.id)
            event.status = EventStatus.SIGNLED
        elif status is _InboundStatus.DISCARD or external_id is None:
            # A 201 is still returned: the event was received, then discarded. Unverified (ref §6 open question 5).
            event.status = EventStatus.DISCARDED
        else:
            acting_on = AlertStatus.OPEN
            if status is _InboundStatus.RESOLVED:
                acting_on |= AlertStatus.ACKNOWLEDGED
            targets = [a for a in self.list_alerts(external_id=external_id, team_id=team.id) if a.status & acting_on]
            for alert in targets:
                if status is _InboundStatus.ACKNOWLEDGED:
                    self._acknowledge(alert, None, None, now)
                    event.acknowledged_alert_ids.append(alert.id)
                else:
                    self._close(alert, None, None, now)
                    event.closed_alert_ids.append(alert.id)
            # No alert to act on: what SIGNL4 answers is an open question (ref §6 q. 5); we record "Discarded".
            if not targets:
                event.status = EventStatus.DISCARDED
            elif status is _InboundStatus.ACKNOWLEDGED:
                event.status = EventStatus.ACKNOWLEDGED
            else:
                event.status = EventStatus.RESOLVED
        return event

    def _create_alert(self, team: Team, event: Event, params: Sequence[RawParameter]) -> Alert:
        scenario = (_control(params, "X-S4-AlertingScenario") or "single_ack").casefold()
        # multi_ack: "as many people as are on duty must ack"; duty is not modelled, so every member counts.
        required = max(1, len(team.member_ids)) if scenario in ("multi_ack", "emergency") else 1
        flags = AlertFlags.HAS_LOCATION_INFO if _control(params, "X-S4-Location") else AlertFlags.NONE
        alert = Alert(
            id=new_signl4_id(event.created), event_id=event.id, team_id=team.id, subscription_id=team.subscription_id,
            event_source_id=event.event_source_id, external_id=event.external_id, title=event.title, text=event.text,
            parameters=list(event.parameters), category=_control(params, "X-S4-Service") or None,
            # No documented control parameter sets the severity of a webhook alert; Low (0) is our default.
            severity=AlertSeverity.LOW, status=AlertStatus.OPEN, created=event.created,
            last_modified=event.created, required_acknowledgements=required, flags=flags,
        )
        self.alerts[alert.id] = alert
        self._notify(OutboundEventType.NEW_SIGNL, alert, event.created)
        return alert

    # -- user actions -------------------------------------------------------------------------------------------

    @_locked
    def acknowledge(self, alert_id: str, user: str, description: str | None = None) -> Alert:
        """``user`` (id or mail) acknowledges: Open → Acknowledged, outbound 201 with statusCode 2.

        Further users may acknowledge an acknowledged alert (multi_ack); the same user twice, or any user on a
        closed alert, is a lifecycle conflict. A ``description`` becomes an annotation carried by the 201
        (Enterprise Alert does that, ref §2.3 [SIBLING]).
        """
        alert = self.get_alert(alert_id)
        actor = self.find_user(alert.subscription_id, user)
        self._acknowledge(alert, actor, description, self.now())
        return alert

    @_locked
    def close(self, alert_id: str, user: str, description: str | None = None) -> Alert:
        """``user`` closes: Open/Acknowledged → Closed, outbound 201 with statusCode 4; closing twice is a conflict."""
        alert = self.get_alert(alert_id)
        actor = self.find_user(alert.subscription_id, user)
        self._close(alert, actor, description, self.now())
        return alert

    @_locked
    def annotate(self, alert_id: str, user: str, text: str,
                 annotation_type: AnnotationType = AnnotationType.TEXT) -> Annotation:
        """``user`` adds a note (allowed in every status), outbound 203."""
        alert = self.get_alert(alert_id)
        actor = self.find_user(alert.subscription_id, user)
        if not text.strip():
            raise InvalidRequestError("Annotation text is missing.")
        if annotation_type is not AnnotationType.TEXT:
            raise InvalidRequestError("Only text annotations are supported.")
        now = self.now()
        annotation = self._add_annotation(alert, actor, text, now)
        self._notify(OutboundEventType.ANNOTATED, alert, now, user=actor, annotation=annotation)
        return annotation

    @_locked
    def escalate(self, alert_id: str) -> Alert:
        """Nobody acknowledged in time: the alert escalates (stays Open), outbound 202. Only open alerts escalate."""
        alert = self.get_alert(alert_id)
        if alert.status != AlertStatus.OPEN:
            raise ConflictError("Alert can't be escalated because it is against the defined alert lifecycle.",
                                f"Alert {alert.id} is {alert.status.name}, not OPEN.")
        now = self.now()
        alert.flags |= AlertFlags.ESCALATED_TO_TEAM
        alert.escalated_at.append(now)
        alert.last_modified = now
        self._notify(OutboundEventType.ESCALATED, alert, now)
        return alert

    def _acknowledge(self, alert: Alert, actor: User | None, description: str | None, now: datetime) -> None:
        if alert.status == AlertStatus.CLOSED or (actor is not None and actor.id in alert.acknowledgements):
            raise ConflictError("Alert can't be acknowledged because it is against the defined alert lifecycle.",
                                f"Alert {alert.id} is {alert.status.name}.")
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_at = alert.acknowledged_at or now
        if actor is not None:
            alert.acknowledgements.append(actor.id)
        alert.last_modified = now
        annotation = self._add_annotation(alert, actor, description, now) if description else None
        self._notify(OutboundEventType.STATUS_CHANGED, alert, now, user=actor, annotation=annotation,
                     user_key_present=True)

    def _close(self, alert: Alert, actor: User | None, description: str | None, now: datetime) -> None:
        if alert.status == AlertStatus.CLOSED:
            raise ConflictError("Alert can't be closed because it is against the defined alert lifecycle.",
                                f"Alert {alert.id} is already closed.")
        alert.status = AlertStatus.CLOSED
        alert.closed_at = now
        alert.closed_by = actor.id if actor is not None else None
        alert.last_modified = now
        annotation = self._add_annotation(alert, actor, description, now) if description else None
        self._notify(OutboundEventType.STATUS_CHANGED, alert, now, user=actor, annotation=annotation,
                     user_key_present=True)

    def _add_annotation(self, alert: Alert, actor: User | None, text: str, now: datetime) -> Annotation:
        annotation = Annotation(id=new_signl4_id(now), alert_id=alert.id, team_id=alert.team_id, text=text,
                                timestamp=now, user_id=actor.id if actor else None)
        alert.annotations.append(annotation)
        alert.flags |= AlertFlags.HAS_ANNOTATIONS
        alert.last_modified = now
        return annotation

    # -- search (ref §3.3 "List / search alerts") -------------------------------------------------------------

    @_locked
    def search_alerts(self, subscription_id: str, user_id: str, query: AlertQuery, *, max_results: int,
                      after_row_key: str | None = None) -> AlertPage:
        """Alerts of the user's teams matching ``query``, newest first, ``max_results`` per page.

        The continuation is the id of the last alert returned: ids sort newest first and never change, so
        paging is stable while new alerts arrive (they sort before the cursor).
        """
        user = self.find_user(subscription_id, user_id)
        visible = {t.id for t in self.teams.values() if user.id in t.member_ids}
        candidates = [a for a in self.list_alerts()
                      if a.team_id in visible and query.matches(a) and (after_row_key is None or a.id > after_row_key)]
        page = candidates[:max_results]
        more = len(candidates) > max_results
        return AlertPage(results=page, next_row_key=page[-1].id if more and page else None)

    # -- outbound notifications (ref §2) ---------------------------------------------------------------------

    def _notify(self, event_type: OutboundEventType, alert: Alert, now: datetime, *, user: User | None = None,
                annotation: Annotation | None = None, user_key_present: bool = False) -> None:
        payload = _envelope(event_type, alert, now, user=user, annotation=annotation,
                            user_key_present=user_key_present)
        self._recorded.append(payload)
        for webhook in self.webhooks.values():
            if (webhook.enabled and webhook.subscription_id == alert.subscription_id
                    and webhook.team_id in (None, alert.team_id)):
                self._deliveries.append(_Delivery(payload=copy.deepcopy(payload), webhook_id=webhook.id,
                                                  url=webhook.url))

    @_locked
    def notifications(self) -> list[dict[str, Any]]:
        """The notifications recorded since the last drain, oldest first (copies)."""
        return copy.deepcopy(self._recorded)

    @_locked
    def drain_notifications(self) -> list[dict[str, Any]]:
        """Return and forget the recorded notifications. Does not touch the delivery queue."""
        drained, self._recorded = self._recorded, []
        return drained

    @_locked
    def pending_deliveries(self) -> list[tuple[str, dict[str, Any]]]:
        """``(url, notification)`` pairs still owed to registered webhooks, in queue order."""
        return [(d.url, copy.deepcopy(d.payload)) for d in self._deliveries]

    async def deliver_outbound(self, client: httpx.AsyncClient, *, duplicate_rate: float = 0.0,
                               shuffle: bool = False) -> DeliveryReport:
        """POST every queued notification to its webhook once; keep it queued until a 2xx (at-least-once).

        SIGNL4 does not document retries or timeouts (ref §2.1, §6 q. 3); it only warns that a notification may be
        "received multiple times". ``duplicate_rate`` re-sends a delivered notification with that probability and
        ``shuffle`` delivers out of order, so receivers can prove they de-duplicate on ``id`` and do not rely on
        order. No authentication header is sent: none exists (ref §2.1).
        """
        with self._lock:
            batch = list(self._deliveries)
        if shuffle:
            self._random.shuffle(batch)
        delivered = failed = duplicates = 0
        for delivery in batch:
            ok, error = await _post(client, delivery)
            if ok and duplicate_rate > 0 and self._random.random() < duplicate_rate:
                await _post(client, delivery)
                duplicates += 1
            with self._lock:
                if ok:
                    delivered += 1
                    self._deliveries = [d for d in self._deliveries if d is not delivery]
                else:
                    failed += 1
                    delivery.attempts += 1
                    delivery.last_error = error
        with self._lock:
            pending = len(self._deliveries)
        return DeliveryReport(delivered=delivered, failed=failed, duplicates=duplicates, pending=pending)

    # -- internals ------------------------------------------------------------------------------------------

    def _subscription(self, subscription_id: str) -> Subscription:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            raise NotFoundError("Subscription not found.", f"A subscription with ID {subscription_id} was not found.")
        return subscription

    def _team(self, team_id: str) -> Team:
        team = self.teams.get(team_id)
        if team is None:
            raise NotFoundError("Team not found.", f"A team with ID {team_id} was not found.")
        return team

    def _user_by_id(self, user_id: str) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise NotFoundError("User not found.", f"A user with ID {user_id} was not found.")
        return user


def limits_for_plan(name: str) -> RateLimitPolicy:
    """The documented limits of a plan, "commercial" or "free" (ref §1.7)."""
    try:
        return _PLANS[name.casefold()]
    except KeyError:
        raise InvalidRequestError("Unknown plan.", f"Plan must be one of {sorted(_PLANS)}.") from None


async def _post(client: httpx.AsyncClient, delivery: _Delivery) -> tuple[bool, str | None]:
    try:
        response = await client.post(delivery.url, json=delivery.payload)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if response.is_success:
        return True, None
    return False, f"HTTP {response.status_code}"


def _envelope(event_type: OutboundEventType, alert: Alert, now: datetime, *, user: User | None,
              annotation: Annotation | None, user_key_present: bool) -> dict[str, Any]:
    """The notification body, key for key as the samples of signl4.com/outbound-webhooks (ref §2.3).

    * 200 has no ``team``, no ``user`` and no ``acknowledgedUserIds``; 202 has ``team`` and no ``user``;
      201 and 203 carry the acting ``user``.
    * A 201 raised by an inbound ``acknowledged``/``resolved`` event has no actor: ``user`` is null (ref §6).
    * 203 reports ``statusCode`` 0 whatever the alert's status, as the official sample does, so consumers that
      (wrongly) read the status from a 203 fail in tests rather than in production.
    """
    alert_body: dict[str, Any] = {
        "statusCode": 0 if event_type is OutboundEventType.ANNOTATED else int(alert.status),
        "eventId": alert.event_id,
        "externalEventId": alert.external_id,
    }
    if event_type in (OutboundEventType.STATUS_CHANGED, OutboundEventType.ESCALATED):
        alert_body["acknowledgedUserIds"] = list(alert.acknowledgements)
    alert_body["id"] = alert.id
    payload: dict[str, Any] = {
        "eventType": int(event_type),
        "eventRaisedUtc": format_utc(now),
        "subscription": {"id": alert.subscription_id},
    }
    if event_type is OutboundEventType.ESCALATED:
        payload["team"] = {"id": alert.team_id}
    if user is not None or user_key_present:
        payload["user"] = {"username": user.name, "mailaddress": user.mail, "id": user.id} if user else None
    payload["alert"] = alert_body
    if annotation is not None:
        payload["annotation"] = {"message": annotation.text, "id": annotation.id}
    payload["id"] = str(uuid.uuid4())
    return payload
