"""The state store interface. Implementations: SQLite (default) and PostgreSQL, both in ``store/sql.py``.

Everything the connector has done or promised to do lives here:

* ``outbox``: side effects, each with a deterministic key, written *before* it is attempted and marked
  ``done`` only after the remote side confirmed (see ``ActionState``).
* ``links``: which Signl belongs to which incident.
* ``inbox``: SIGNL4 events (webhook or polled), keyed by the event id, processed at most once to completion.
* ``leases``: which replica runs which connector, when several share one store. Each acquisition bumps the lease's
  ``epoch``; the engine's writes carry a ``Fence`` (lease, owner, epoch) and are refused with ``LeaseLostError``
  once another replica took the lease over or it expired (see ``Fence``).
* ``cursors``: small per-connector values (last poll time, reconciliation marks).

All timestamps are timezone-aware UTC ``datetime``s passed in by the caller: the store has no clock. A naive
``datetime`` is refused with ``ValueError``; an aware one in another zone is converted; reads return UTC.

Outbox rows and inbox events that reached DONE, DEAD or DISCARDED are never changed again by the engine; only an
operator's ``requeue_dead`` reopens a DEAD row. Marking a key that was never
written raises ``KeyError``: it is a bug, not a condition to recover from.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sentinel_signl4.domain.enums import ActionKind, ActionState
from sentinel_signl4.domain.link_state import LinkState
from sentinel_signl4.store.pauses import Pause

__all__ = [
    "ActionClosedError",
    "Fence",
    "InboxEvent",
    "InboxState",
    "Lease",
    "LeaseLostError",
    "Link",
    "OutboxAction",
    "OutboxHealth",
    "StateStore",
    "StoreReplacedError",
]


class ActionClosedError(Exception):
    """An attempt was about to start on an outbox row that is already DONE, DEAD or DISCARDED.

    With one worker per connector this happens only when an operator discarded the row after the worker read it,
    or when two replicas both believe they hold the lease; refusing to start is what prevents a second page.
    """

    def __init__(self, key: str, state: ActionState) -> None:
        super().__init__(f"outbox action {key!r} is already {state.value}; not starting another attempt")
        self.key = key
        self.state = state


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease as ``acquire_lease`` granted it: ``owner`` holds ``name`` until ``expires_at``, in ``epoch``."""

    name: str
    owner: str
    epoch: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Fence:
    """What a fenced write proves before it changes anything: ``owner`` still holds ``lease`` in ``epoch`` and the
    lease has not expired at ``clock()`` (read inside the write's transaction, not when the cycle started).

    ``epoch`` comes from the ``Lease`` that ``acquire_lease`` returned when the lease was *acquired*; renewals keep
    it, so a fence stays valid for as long as the owner keeps its lease without a gap.
    """

    lease: str
    owner: str
    epoch: int
    clock: Callable[[], datetime] = field(compare=False, repr=False)


class LeaseLostError(Exception):
    """A fenced write was refused: the caller no longer holds its lease in its epoch. Nothing was written.

    Raised to a replica that was paused (SIGSTOP, a VM freeze, a long GC) past its lease's TTL while another
    replica took the connector over. The caller must stop its cycle: whatever it planned may be done by now.
    """

    def __init__(self, fence: Fence, why: str) -> None:
        super().__init__(f"lease {fence.lease!r} of {fence.owner!r} (epoch {fence.epoch}) is lost: {why}; "
                         "nothing was written")
        self.fence = fence


class StoreReplacedError(Exception):
    """The SQLite file was deleted or replaced while the store was open; nothing is written into the new file."""

    def __init__(self, path: str, found: str) -> None:
        super().__init__(f"the SQLite file {path} was deleted or replaced while running ({found}); refusing to "
                         "write into a new empty file. Restore the file, or restart to start from an empty store")
        self.path = path


@dataclass(frozen=True, slots=True)
class OutboxAction:
    key: str
    connector: str
    kind: ActionKind
    incident_id: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    state: ActionState = ActionState.PENDING
    attempts: int = 0
    in_doubt: bool = False
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    result: Mapping[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """One incident ⇄ one Signl. ``incident_id`` is the source's id (ARM resource id or Graph id)."""

    connector: str
    incident_id: str
    external_id: str
    incident_number: int
    event_id: str | None = None
    alert_id: str | None = None
    generation: int = 1
    open: bool = True
    data: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def state(self) -> LinkState:
        """``data`` typed (also as written before it was versioned)."""
        return LinkState.from_data(self.data)

    def with_state(self, state: LinkState, **changes: Any) -> Link:
        """This link with ``state`` as its data (and other fields changed as ``dataclasses.replace`` does)."""
        return replace(self, data=state.to_data(), **changes)


class InboxState:
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class InboxEvent:
    connector: str
    event_id: str
    payload: Mapping[str, Any]
    received_at: datetime
    state: str = InboxState.PENDING
    attempts: int = 0
    last_error: str | None = None
    processed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxHealth:
    """What the connector's health needs from its outbox, read in one statement.

    ``oldest_pending_at``: ``created_at`` of the oldest raise_signl row still PENDING or IN_FLIGHT (None if none);
    ``open_raises``: how many such rows; ``dead_raises``: raise_signl rows DEAD (pages that will not go out);
    ``retrying``: open rows of any kind whose last attempt failed (``last_error`` set); ``open_rows``: rows of any
    kind PENDING or IN_FLIGHT (the ``s4s_outbox_pending`` gauge).
    """

    oldest_pending_at: datetime | None = None
    open_raises: int = 0
    dead_raises: int = 0
    retrying: int = 0
    open_rows: int = 0


class StateStore(abc.ABC):
    """Durable state. Every method is a single transaction unless it says otherwise.

    Use as ``async with store:`` to close it on exit.
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- lifecycle -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent; safe for several replicas at once)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    # -- outbox ----------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def enqueue(self, action: OutboxAction, now: datetime) -> bool:
        """Insert ``action`` unless a row with its key exists. Return True if inserted. Never overwrites.

        The row's ``created_at`` and ``updated_at`` are ``now``; the action's own timestamps are ignored."""

    @abc.abstractmethod
    async def get_action(self, key: str) -> OutboxAction | None: ...

    @abc.abstractmethod
    async def due_actions(self, connector: str, now: datetime, limit: int) -> list[OutboxAction]:
        """Rows of ``connector`` that are PENDING with ``next_attempt_at <= now`` (or null), or IN_FLIGHT.

        IN_FLIGHT rows are returned because only one worker runs a connector at a time (leases): a row found
        IN_FLIGHT at the start of a pass was left by a crash, and is in doubt. Oldest first (created_at, key).
        """

    @abc.abstractmethod
    async def mark_in_flight(self, key: str, now: datetime, *, fence: Fence | None = None) -> OutboxAction:
        """Record that an attempt starts now: state IN_FLIGHT, attempts + 1. Returns the updated row.

        With ``fence``, this and every other outbox or inbox state change first checks, in the same transaction,
        that the fence still holds, and raises ``LeaseLostError`` (writing nothing) when it does not.

        If the row was still IN_FLIGHT (an earlier attempt's outcome was never recorded), it becomes
        ``in_doubt``.
        Raises ``ActionClosedError`` if the row is DONE, DEAD or DISCARDED, ``KeyError`` if there is no such row."""

    @abc.abstractmethod
    async def mark_retry(self, key: str, now: datetime, next_attempt_at: datetime, error: str,
                         *, in_doubt: bool, fence: Fence | None = None) -> None:
        """Back to PENDING, due at ``next_attempt_at``. ``in_doubt`` stays True once set (it is OR-ed in).

        A DONE or DEAD row is left unchanged (a late failure report never reopens finished work)."""

    @abc.abstractmethod
    async def defer(self, key: str, now: datetime, until: datetime, *, in_doubt: bool,
                    fence: Fence | None = None) -> None:
        """Put an open row off until ``until`` without an attempt: PENDING, ``attempts`` and ``last_error``
        unchanged (pacing is not a failure). ``in_doubt`` is OR-ed in, as with :meth:`mark_retry`."""

    @abc.abstractmethod
    async def mark_dead(self, key: str, now: datetime, error: str, *, fence: Fence | None = None) -> None:
        """Give up on ``key`` with ``error`` as the reason. A DONE or DEAD row is left unchanged."""

    @abc.abstractmethod
    async def complete(self, key: str, now: datetime, result: Mapping[str, Any], *,
                       link: Link | None = None, follow_ups: Sequence[OutboxAction] = (),
                       fence: Fence | None = None) -> None:
        """In one transaction: mark ``key`` DONE with ``result``, upsert ``link`` (if given) and enqueue
        ``follow_ups`` (insert-if-absent). A crash can never leave a done raise without its link.

        If ``key`` is already DONE or DEAD nothing at all is written (the first outcome stands)."""

    @abc.abstractmethod
    async def count_actions(self, connector: str) -> dict[ActionState, int]:
        """Rows of ``connector`` per state; every state is present (0 when there are none)."""

    @abc.abstractmethod
    async def list_actions(self, connector: str, *, states: Sequence[ActionState] | None = None,
                           limit: int = 100) -> list[OutboxAction]:
        """Rows of ``connector`` (optionally only in ``states``), most recently updated first."""

    @abc.abstractmethod
    async def prune(self, connector: str, before: datetime) -> tuple[int, int]:
        """Delete DONE outbox rows last updated before ``before`` and finished (DONE/DEAD) inbox events received
        before it; return (outbox rows, inbox events) deleted. Links, pending/in-flight, DEAD and DISCARDED outbox
        rows stay (a dead or discarded raise has no link: its row is what stops the next poll paging again).

        Safe because a done side effect is remembered by its link (raised Signls) or by its remote id (comments
        are written with deterministic ids): the row's key is only needed while the action may still run."""

    # -- links -----------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_link(self, connector: str, incident_id: str) -> Link | None: ...

    @abc.abstractmethod
    async def get_link_by_external_id(self, connector: str, external_id: str) -> Link | None: ...

    @abc.abstractmethod
    async def put_link(self, link: Link, now: datetime) -> None:
        """Insert or replace the link of (connector, incident_id); ``created_at`` stays that of the first.

        An ``external_id`` is unique per connector: reusing one for another incident raises the driver's
        integrity error."""

    @abc.abstractmethod
    async def move_link(self, link: Link, *, from_incident_id: str, now: datetime,
                        follow_ups: Sequence[OutboxAction] = ()) -> None:
        """In one transaction: the link of ``(link.connector, from_incident_id)`` becomes ``link`` — another
        incident, the same Signl (same ``external_id``) — and ``follow_ups`` are enqueued (insert-if-absent).

        For an incident Defender merged into another one. ``created_at`` stays that of the moved link. Raises
        ``KeyError`` if there is no link to move or it belongs to another ``external_id``; the driver's integrity
        error if ``link.incident_id`` already has a link (nothing is written then)."""

    @abc.abstractmethod
    async def links_for(self, connector: str, incident_ids: Sequence[str]) -> dict[str, Link]:
        """The links of these incidents, keyed by incident id (one query, for a whole poll page)."""

    @abc.abstractmethod
    async def open_links(self, connector: str, limit: int = 1000) -> list[Link]:
        """Links of ``connector`` with ``open`` set, oldest first."""

    # -- inbox -----------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_inbox(self, event: InboxEvent) -> bool:
        """Insert unless (connector, event_id) exists. Return True if inserted."""

    @abc.abstractmethod
    async def pending_inbox(self, connector: str, limit: int, *,
                            after: tuple[datetime, str] | None = None) -> list[InboxEvent]:
        """PENDING events, oldest ``received_at`` first (ties by ``event_id``).

        ``after`` = ``(received_at, event_id)`` of the last event of the previous page: only events ordered after
        it are returned (keyset paging past events that stay pending)."""

    @abc.abstractmethod
    async def finish_inbox(self, connector: str, event_id: str, now: datetime, *, state: str,
                           error: str | None = None, follow_ups: Sequence[OutboxAction] = (),
                           fence: Fence | None = None) -> None:
        """Set the event's state (DONE/DEAD/PENDING with attempts + 1) and enqueue ``follow_ups`` atomically.

        Only a PENDING event changes; an event already DONE or DEAD is left as it is and no follow-ups are
        written. ``KeyError`` if there is no such event."""

    # -- leases ----------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def acquire_lease(self, name: str, owner: str, now: datetime, ttl_seconds: float) -> Lease | None:
        """Take or renew the lease ``name`` for ``owner`` if it is free, expired, or already ours.

        Returns the ``Lease`` if ``owner`` now holds it until ``now + ttl_seconds``, else None. Atomic: of several
        replicas trying at once, exactly one wins. Taking a lease that was free, expired or someone else's is an
        *acquisition* and increments its epoch; renewing one's own unexpired lease keeps the epoch."""

    @abc.abstractmethod
    async def renew_leases(self, owner: str, ttls: Mapping[str, float], now: datetime) -> dict[str, Lease]:
        """Renew, in one transaction, each lease of ``ttls`` (name → TTL in seconds) that ``owner`` holds and that
        has not expired at ``now``: it then expires at ``now + ttl``, in the same epoch.

        Returns the leases renewed, by name. A name missing from the answer was not renewed: it expired, was
        released, or another replica holds it now; its owner has lost it. Never acquires a lease: one that is free
        or expired stays so (``acquire_lease`` takes it, with a new epoch)."""

    @abc.abstractmethod
    async def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it (someone else's lease is left alone). The row stays, expired,
        so the next acquisition still increments the epoch (a fence from before the release never matches again).
        """

    @abc.abstractmethod
    async def lease_holder(self, name: str) -> str | None:
        """The owner recorded for lease ``name`` (expired or not), or None."""

    @abc.abstractmethod
    async def get_lease(self, name: str) -> Lease | None:
        """Lease ``name`` as recorded (owner, epoch, expiry; possibly expired or released), or None."""

    @abc.abstractmethod
    async def take_over_lease(self, name: str, dead_owner: str, owner: str, now: datetime,
                              ttl_seconds: float) -> Lease | None:
        """Give lease ``name`` to ``owner`` if, and only if, ``dead_owner`` still holds it (compare-and-set); an
        acquisition, so the epoch is incremented.

        Only for a holder *proven* dead (``engine.leases``: its instance lock is free), so a restart need not
        wait for expiry.
        """

    # -- cursors ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_cursor(self, connector: str, name: str) -> str | None: ...

    @abc.abstractmethod
    async def set_cursor(self, connector: str, name: str, value: str, *, fence: Fence | None = None) -> None:
        """Store a cursor; with ``fence``, only while the lease still holds (else ``LeaseLostError``, nothing
        written), so a replica resumed after losing its lease cannot move a cursor the new holder relies on."""
        ...

    # -- operator commands (``sentinel-signl4 outbox …``) ------------------------------------------------------
    @abc.abstractmethod
    async def get_actions_by_state(self, states: Sequence[ActionState] | None = None, *,
                                   connector: str | None = None, limit: int = 100) -> list[OutboxAction]:
        """Rows in ``states`` (any state when None) of ``connector`` (every connector when None), oldest first
        (created_at, key), at most ``limit``."""

    @abc.abstractmethod
    async def requeue_dead(self, now: datetime, *, keys: Sequence[str] | None = None,
                           connector: str | None = None) -> list[str]:
        """Give DEAD rows another chance: back to PENDING, due at ``now``, ``attempts`` 0. Returns their keys.

        Which rows: those of ``keys`` (further limited to ``connector`` when given), else every DEAD row of
        ``connector``, else every DEAD row. ``in_doubt``, the payload and the last error are kept, so a send whose
        outcome was unknown is still looked up before it is repeated. Only DEAD rows change, in the statement that
        changes them: a row in any other state (or unknown) is left alone and not returned."""

    @abc.abstractmethod
    async def discard_actions(self, now: datetime, reason: str, *, keys: Sequence[str] | None = None,
                              connector: str | None = None, by: str = "") -> list[str]:
        """An operator gives up on rows: they become DISCARDED, final, with ``{"discarded_reason": reason,
        "discarded_by": by}`` as their result (the last error is kept). Returns their keys.

        Which rows: those of ``keys`` that are DEAD or PENDING (further limited to ``connector`` when given), else
        every DEAD row of ``connector``, else every DEAD row. IN_FLIGHT and finished rows are left alone, in the
        statement that changes the others (a row the worker started or finished meanwhile is not touched)."""
    # -- health ----------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def outbox_health(self, connector: str) -> OutboxHealth:
        """The figures of ``OutboxHealth`` for ``connector``, in one read statement."""

    # -- maintenance windows and pauses (``store/pauses.py``) -------------------------------------------------
    @abc.abstractmethod
    async def add_pause(self, pause: Pause) -> None:
        """Store a new pause (its id must be new)."""

    @abc.abstractmethod
    async def pauses(self, now: datetime, *, connector: str | None = None) -> list[Pause]:
        """Pauses not cleared that have not ended by ``now`` (in force or still to come), of ``connector`` and of
        every connector (``*``) when given; soonest end first."""

    @abc.abstractmethod
    async def clear_pause(self, pause_id: str, now: datetime, *, by: str) -> Pause | None:
        """End a pause now. Returns it as cleared, or None when no such pause is still to end (ended, cleared or
        unknown)."""

    @abc.abstractmethod
    async def release_held(self, connector: str, held_until: datetime, now: datetime) -> list[str]:
        """Make PENDING rows of ``connector`` that wait for exactly ``held_until`` (rows held by a window that
        ends then) due, and counted as queued, from ``now``; return their keys."""
