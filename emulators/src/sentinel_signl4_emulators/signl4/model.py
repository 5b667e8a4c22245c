"""State of the SIGNL4 emulator: subscriptions, teams, users, alerts, events, outbound notifications, throttling.

This module knows SIGNL4's *behaviour* (how an event becomes an alert, the alert lifecycle, which outbound
notification each change raises, how throttling windows work) and nothing about HTTP requests; the wire format of
the inbound webhook and the REST API lives in :mod:`sentinel_signl4_emulators.signl4.routes`. The clock is injected, so
tests decide what "now" is.

The parts live in sibling modules and are re-exported here: codes, ids and entities (``signl4.entities``),
errors (``signl4.errors``), throttling windows (``signl4.throttle``), inbound payload semantics
(``signl4.inbound``) and outbound notifications (``signl4.outbound``). This module holds the state and its
lifecycle rules.

Facts come from ``shared/reference/signl4-api.md`` (cited as "ref §n"). Where the reference marks a fact as
derived, sibling-product or open, the code says so next to the choice it made.
"""

from __future__ import annotations

import copy
import functools
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from sentinel_signl4_emulators.signl4.behaviour import Behaviour
from sentinel_signl4_emulators.signl4.entities import (
    Alert,
    AlertFlags,
    AlertPage,
    AlertQuery,
    AlertSeverity,
    AlertStatus,
    Annotation,
    AnnotationType,
    Event,
    EventStatus,
    OutboundEventType,
    OutboundWebhook,
    Parameter,
    RawParameter,
    StatusMapping,
    Subscription,
    Team,
    User,
    format_utc,
    new_signl4_id,
)
from sentinel_signl4_emulators.signl4.errors import ConflictError, InvalidRequestError, NotFoundError, Signl4Error
from sentinel_signl4_emulators.signl4.inbound import (
    InboundStatus,
    control_value,
    extract_title_and_text,
    inbound_status,
)
from sentinel_signl4_emulators.signl4.outbound import Delivery, DeliveryReport, envelope, post_delivery
from sentinel_signl4_emulators.signl4.rejections import InboundRejections
from sentinel_signl4_emulators.signl4.throttle import (
    COMMERCIAL_LIMITS,
    FREE_LIMITS,
    INVALID_REQUEST_LIMITS,
    FixedWindows,
    RateDecision,
    RateLimit,
    RateLimitPolicy,
    limits_for_plan,
)

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
    "Behaviour",
    "ConflictError",
    "DeliveryReport",
    "Event",
    "EventStatus",
    "InboundRejections",
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


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        self._deliveries: list[Delivery] = []
        self._event_windows = FixedWindows()
        self._rest_windows = FixedWindows()
        self._invalid_windows = FixedWindows()
        self.default_limits = self._initial_limits
        self.invalid_request_limits = self._initial_invalid_limits
        self.behaviour = Behaviour()
        self._hidden_categories: dict[str, frozenset[str]] = {}  # user id -> casefolded category names
        self.inbound_rejections = InboundRejections()

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
    def set_inbound_rejections(self, rules: InboundRejections) -> None:
        """Refuse inbound event bodies from now on: too large (413) or with a given field (400)."""
        self.inbound_rejections = rules

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
        external_id, status = inbound_status(params, mapping)
        title, text, remaining = extract_title_and_text(params)
        event = Event(
            id=new_signl4_id(now), team_id=team.id, subscription_id=team.subscription_id,
            event_source_id=event_source_id, external_id=external_id, status=EventStatus.PROCESSING,
            title=title, text=text, parameters=[Parameter(p.name, p.value) for p in remaining],
            created=now, last_modified=now,
        )
        self.events[event.id] = event
        if status is InboundStatus.NEW:
            alert = self._create_alert(team, event, params)
            event.target_alert_ids.append(alert.id)
            event.status = EventStatus.SIGNLED
        elif status is InboundStatus.DISCARD or external_id is None:
            # A 201 is still returned: the event was received, then discarded. Unverified (ref §6 open question 5).
            event.status = EventStatus.DISCARDED
        else:
            acting_on = AlertStatus.OPEN
            if status is InboundStatus.RESOLVED:
                acting_on |= AlertStatus.ACKNOWLEDGED
            targets = [a for a in self.list_alerts(external_id=external_id, team_id=team.id) if a.status & acting_on]
            for alert in targets:
                if status is InboundStatus.ACKNOWLEDGED:
                    self._acknowledge(alert, None, None, now)
                    event.acknowledged_alert_ids.append(alert.id)
                else:
                    self._close(alert, None, None, now)
                    event.closed_alert_ids.append(alert.id)
            # No alert to act on: what SIGNL4 answers is an open question (ref §6 q. 5); we record "Discarded".
            if not targets:
                event.status = EventStatus.DISCARDED
            elif status is InboundStatus.ACKNOWLEDGED:
                event.status = EventStatus.ACKNOWLEDGED
            else:
                event.status = EventStatus.RESOLVED
        return event

    def _create_alert(self, team: Team, event: Event, params: Sequence[RawParameter]) -> Alert:
        scenario = (control_value(params, "X-S4-AlertingScenario") or "single_ack").casefold()
        # multi_ack: "as many people as are on duty must ack"; duty is not modelled, so every member counts.
        required = max(1, len(team.member_ids)) if scenario in ("multi_ack", "emergency") else 1
        flags = AlertFlags.HAS_LOCATION_INFO if control_value(params, "X-S4-Location") else AlertFlags.NONE
        alert = Alert(
            id=new_signl4_id(event.created), event_id=event.id, team_id=team.id, subscription_id=team.subscription_id,
            event_source_id=event.event_source_id, external_id=event.external_id, title=event.title, text=event.text,
            parameters=list(event.parameters), category=control_value(params, "X-S4-Service") or None,
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

    # -- behaviours no official source settles (``signl4.behaviour``) ----------------------------------------

    @_locked
    def set_behaviour(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour

    @_locked
    def hide_categories(self, user: str, categories: Iterable[str]) -> None:
        """The categories ``user`` (id or mail) has hidden from their own view; replaces the earlier set."""
        found = next((u for u in self.users.values() if user in (u.id, u.mail)), None)
        if found is None:
            raise NotFoundError("User not found.", f"A user with ID {user} was not found.")
        self._hidden_categories[found.id] = frozenset(c.casefold() for c in categories)

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
        hidden = frozenset() if query.show_hidden_categories else self._hidden_categories.get(user.id, frozenset())
        bound = self.behaviour.as_bound(query)
        candidates = [a for a in self.list_alerts()
                      if a.team_id in visible and bound.matches(a) and (after_row_key is None or a.id > after_row_key)
                      and (a.category or "").casefold() not in hidden]
        page = candidates[:max_results]
        more = len(candidates) > max_results
        return AlertPage(results=page, next_row_key=page[-1].id if more and page else None)

    # -- outbound notifications (ref §2) ---------------------------------------------------------------------

    def _notify(self, event_type: OutboundEventType, alert: Alert, now: datetime, *, user: User | None = None,
                annotation: Annotation | None = None, user_key_present: bool = False) -> None:
        payload = envelope(event_type, alert, now, user=user, annotation=annotation,
                            user_key_present=user_key_present)
        self._recorded.append(payload)
        for webhook in self.webhooks.values():
            if (webhook.enabled and webhook.subscription_id == alert.subscription_id
                    and webhook.team_id in (None, alert.team_id)):
                self._deliveries.append(Delivery(payload=copy.deepcopy(payload), webhook_id=webhook.id,
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
            ok, error = await post_delivery(client, delivery)
            if ok and duplicate_rate > 0 and self._random.random() < duplicate_rate:
                await post_delivery(client, delivery)
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
