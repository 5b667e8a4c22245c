"""The SQL state store: one implementation for SQLite and PostgreSQL (SQLAlchemy Core).

Every operation is a synchronous body of Core statements on a ``Connection``, run as one transaction by
``store.transactions`` (in a worker thread on SQLite, on the event loop through asyncpg on PostgreSQL). Build it
with ``store.factory.open_store``, which creates and configures the engines. The only
dialect-specific code here is ``_insert`` (``INSERT … ON CONFLICT``, spelled through the dialect's own
construct); everything else is portable Core.

Rules the queries follow, because the outbox is what stops a page being missed or sent twice:

* Insert-if-absent is one ``INSERT … ON CONFLICT DO NOTHING RETURNING``: the database decides, never a
  read-then-write race.
* A DONE, DEAD or DISCARDED outbox row (and a DONE or DEAD inbox event) is never changed again by the engine:
  every state change has ``WHERE state IN (open states)`` in the same statement that changes it. The operator
  commands (``requeue_dead``, ``discard_actions``) follow the same rule with their own source states.
* Unknown keys raise ``KeyError``: asking to mark something that was never written down is a bug.
* Every ``datetime`` argument goes through ``to_utc`` first, so a naive one is refused with ``ValueError``
  before any SQL runs (inside SQLAlchemy it would surface wrapped in a ``StatementError``).
* Driver errors propagate unchanged (``sqlalchemy.exc.*``); nothing is swallowed.
* Fencing: a state change given a ``Fence`` first reads the lease row in its own transaction (``FOR SHARE`` on
  PostgreSQL, so a take-over waits for the write to commit; SQLite's write lock serialises it anyway) and raises
  ``LeaseLostError`` before writing anything when the owner, the epoch or the expiry no longer match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from sentinel_signl4.domain.enums import ActionKind, ActionState
from sentinel_signl4.store.base import (
    ActionClosedError,
    Fence,
    InboxEvent,
    InboxState,
    Lease,
    LeaseLostError,
    Link,
    OutboxAction,
    OutboxHealth,
    StateStore,
)
from sentinel_signl4.store.migrate import upgrade_to_head
from sentinel_signl4.store.pauses import Pause, PauseMode
from sentinel_signl4.store.tables import UTCDateTime, cursors, inbox, leases, links, outbox, pauses, to_utc
from sentinel_signl4.store.transactions import Transactions

__all__ = ["SqlStateStore"]

_OPEN_ACTION_STATES = (ActionState.PENDING.value, ActionState.IN_FLIGHT.value)
_INBOX_FINAL_STATES = (InboxState.DONE, InboxState.DEAD)
# What a released lease expires at: long past, so anyone may acquire it (and the epoch moves on).
_RELEASED = datetime(1970, 1, 1, tzinfo=UTC)
# Well below SQLite's (32766) and asyncpg's (32767) bound-parameter limits.
_IN_CHUNK = 500


class SqlStateStore(StateStore):
    """``StateStore`` on SQLAlchemy Core; ``transactions`` runs each operation's body (SQLite in worker threads,
    PostgreSQL through asyncpg). Reads of one statement go through ``read_one`` (on SQLite without a ``BEGIN``),
    reads of several through ``read``, everything that writes through ``write`` (on SQLite ``BEGIN IMMEDIATE``,
    so a transaction takes the write lock before it reads and cannot fail half-way with ``SQLITE_BUSY`` when
    another writer got in first). ``display_url`` is the redacted URL, for ``repr``.
    """

    def __init__(self, transactions: Transactions, *, schema: str | None = None, display_url: str = "") -> None:
        self._tx = transactions
        self._schema = schema
        self._display_url = display_url or repr(transactions.url)

    def __repr__(self) -> str:
        schema = f", schema={self._schema!r}" if self._schema else ""
        return f"{type(self).__name__}(url={self._display_url!r}{schema})"

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._tx.dialect

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def migrate(self) -> None:
        await upgrade_to_head(self._tx, schema=self._schema)

    async def close(self) -> None:
        await self._tx.dispose()

    async def ping(self) -> None:
        await self._tx.read_one(lambda conn: conn.execute(sa.text("SELECT 1")).scalar())

    # -- dialect-specific ------------------------------------------------------------------------------------
    def _insert(self, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that knows ``ON CONFLICT`` (same spelling on both dialects, different classes)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        if self.dialect == "sqlite":
            return sqlite.insert(table)
        raise NotImplementedError(f"unsupported dialect {self.dialect!r}")

    # -- outbox ----------------------------------------------------------------------------------------------
    async def enqueue(self, action: OutboxAction, now: datetime) -> bool:
        now = to_utc(now)
        return await self._tx.write(lambda conn: self._insert_action(conn, action, now))

    async def get_action(self, key: str) -> OutboxAction | None:
        stmt = sa.select(outbox).where(outbox.c.key == key)
        row = await self._tx.read_one(lambda conn: conn.execute(stmt).mappings().first())
        return None if row is None else _action_from_row(row)

    async def due_actions(self, connector: str, now: datetime, limit: int) -> list[OutboxAction]:
        now = to_utc(now)
        due_pending = sa.and_(
            outbox.c.state == ActionState.PENDING.value,
            sa.or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
        )
        stmt = (
            sa.select(outbox)
            .where(outbox.c.connector == connector,
                   sa.or_(due_pending, outbox.c.state == ActionState.IN_FLIGHT.value))
            .order_by(outbox.c.created_at, outbox.c.key)
            .limit(limit)
        )
        rows = await self._tx.read_one(lambda conn: conn.execute(stmt).mappings().all())
        # Only one worker runs a connector (leases), so a row found IN_FLIGHT here was left by an attempt
        # whose outcome nobody recorded (crash, timeout): report it in doubt, to reconcile before a re-send.
        return [_action_from_row(row, in_flight_is_in_doubt=True) for row in rows]

    async def mark_in_flight(self, key: str, now: datetime, *, fence: Fence | None = None) -> OutboxAction:
        now = to_utc(now)
        stmt = (
            sa.update(outbox)
            .where(outbox.c.key == key, outbox.c.state.in_(_OPEN_ACTION_STATES))
            .values(
                state=ActionState.IN_FLIGHT.value,
                attempts=outbox.c.attempts + 1,
                # Starting over a row still IN_FLIGHT: the earlier attempt's outcome was never recorded.
                in_doubt=sa.or_(outbox.c.in_doubt, outbox.c.state == ActionState.IN_FLIGHT.value),
                updated_at=now,
            )
            .returning(*outbox.c)
        )

        def body(conn: Connection) -> sa.RowMapping:
            self._check_fence(conn, fence)
            row = conn.execute(stmt).mappings().first()
            if row is None:
                raise ActionClosedError(key, self._action_state(conn, key))
            return row
        return _action_from_row(await self._tx.write(body))

    async def mark_retry(self, key: str, now: datetime, next_attempt_at: datetime, error: str,
                         *, in_doubt: bool, fence: Fence | None = None) -> None:
        now = to_utc(now)
        next_attempt_at = to_utc(next_attempt_at)
        values: dict[str, Any] = {
            "state": ActionState.PENDING.value,
            "next_attempt_at": next_attempt_at,
            "last_error": error,
            "updated_at": now,
        }
        if in_doubt:
            values["in_doubt"] = True  # never reset: once in doubt, reconcile before every re-send
        await self._update_open_action(key, values, fence)

    async def defer(self, key: str, now: datetime, until: datetime, *, in_doubt: bool,
                    fence: Fence | None = None) -> None:
        values: dict[str, Any] = {"state": ActionState.PENDING.value, "next_attempt_at": to_utc(until),
                                  "updated_at": to_utc(now)}
        if in_doubt:
            values["in_doubt"] = True
        await self._update_open_action(key, values, fence)

    async def mark_dead(self, key: str, now: datetime, error: str, *, fence: Fence | None = None) -> None:
        now = to_utc(now)
        await self._update_open_action(
            key, {"state": ActionState.DEAD.value, "last_error": error, "updated_at": now}, fence,
        )

    async def complete(self, key: str, now: datetime, result: Mapping[str, Any], *,
                       link: Link | None = None, follow_ups: Sequence[OutboxAction] = (),
                       fence: Fence | None = None) -> None:
        now = to_utc(now)
        stmt = (
            sa.update(outbox)
            .where(outbox.c.key == key, outbox.c.state.in_(_OPEN_ACTION_STATES))
            .values(state=ActionState.DONE.value, result=dict(result), next_attempt_at=None, updated_at=now)
            .returning(outbox.c.key)
        )

        def body(conn: Connection) -> None:
            self._check_fence(conn, fence)
            if conn.execute(stmt).first() is None:
                self._action_state(conn, key)  # KeyError if unknown; already DONE/DEAD: nothing to do
                return
            if link is not None:
                self._upsert_link(conn, link, now)
            for follow_up in follow_ups:
                self._insert_action(conn, follow_up, now)
        await self._tx.write(body)

    async def prune(self, connector: str, before: datetime) -> tuple[int, int]:
        cutoff = to_utc(before)

        def body(conn: Connection) -> tuple[int, int]:
            done = conn.execute(sa.delete(outbox).where(
                outbox.c.connector == connector, outbox.c.state == ActionState.DONE.value,
                outbox.c.updated_at < cutoff))
            finished = conn.execute(sa.delete(inbox).where(
                inbox.c.connector == connector, inbox.c.state.in_(_INBOX_FINAL_STATES),
                inbox.c.received_at < cutoff))
            return int(done.rowcount or 0), int(finished.rowcount or 0)
        return await self._tx.write(body)

    async def count_actions(self, connector: str) -> dict[ActionState, int]:
        stmt = (
            sa.select(outbox.c.state, sa.func.count())
            .where(outbox.c.connector == connector)
            .group_by(outbox.c.state)
        )
        rows = await self._tx.read_one(lambda conn: conn.execute(stmt).all())
        counts = dict.fromkeys(ActionState, 0)
        for state, count in rows:
            counts[ActionState(state)] = int(count)
        return counts

    async def list_actions(self, connector: str, *, states: Sequence[ActionState] | None = None,
                           limit: int = 100) -> list[OutboxAction]:
        stmt = sa.select(outbox).where(outbox.c.connector == connector)
        if states is not None:
            stmt = stmt.where(outbox.c.state.in_([ActionState(state).value for state in states]))
        stmt = stmt.order_by(outbox.c.updated_at.desc(), outbox.c.key).limit(limit)
        rows = await self._tx.read_one(lambda conn: conn.execute(stmt).mappings().all())
        return [_action_from_row(row) for row in rows]

    def _insert_action(self, conn: Connection, action: OutboxAction, now: datetime) -> bool:
        stmt = (
            self._insert(outbox)
            .values(
                key=action.key,
                connector=action.connector,
                kind=ActionKind(action.kind).value,
                incident_id=action.incident_id,
                payload=dict(action.payload),
                state=ActionState(action.state).value,
                attempts=action.attempts,
                in_doubt=action.in_doubt,
                next_attempt_at=_utc_or_none(action.next_attempt_at),
                last_error=action.last_error,
                result=None if action.result is None else dict(action.result),
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[outbox.c.key])
            .returning(outbox.c.key)
        )
        return conn.execute(stmt).first() is not None

    async def _update_open_action(self, key: str, values: Mapping[str, Any], fence: Fence | None) -> None:
        """Apply ``values`` if the row is PENDING or IN_FLIGHT; a DONE/DEAD row is left alone."""
        stmt = (
            sa.update(outbox)
            .where(outbox.c.key == key, outbox.c.state.in_(_OPEN_ACTION_STATES))
            .values(**values)
            .returning(outbox.c.key)
        )

        def body(conn: Connection) -> None:
            self._check_fence(conn, fence)
            if conn.execute(stmt).first() is None:
                self._action_state(conn, key)
        await self._tx.write(body)

    def _check_fence(self, conn: Connection, fence: Fence | None) -> None:
        """Raise ``LeaseLostError`` unless ``fence`` (if any) still holds; first statement of a fenced write."""
        if fence is None:
            return
        stmt = sa.select(leases.c.owner, leases.c.epoch, leases.c.expires_at).where(leases.c.name == fence.lease)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(read=True)  # a take-over of this lease waits until this write commits
        row = conn.execute(stmt).first()
        # The time is read now, inside the transaction: a replica resumed after a pause must not use the time
        # its cycle started at.
        at = to_utc(fence.clock())
        if row is None:
            raise LeaseLostError(fence, "the lease does not exist")
        owner, epoch, expires_at = row
        if owner != fence.owner:
            raise LeaseLostError(fence, f"it is held by {owner!r} now")
        if int(epoch) != fence.epoch:
            raise LeaseLostError(fence, f"it was acquired again since (epoch {epoch})")
        if expires_at <= at:
            raise LeaseLostError(fence, f"it expired at {expires_at.isoformat()}")

    @staticmethod
    def _action_state(conn: Connection, key: str) -> ActionState:
        stmt = sa.select(outbox.c.state).where(outbox.c.key == key)
        state = conn.execute(stmt).scalar_one_or_none()
        if state is None:
            raise KeyError(key)
        return ActionState(state)

    # -- links -----------------------------------------------------------------------------------------------
    async def get_link(self, connector: str, incident_id: str) -> Link | None:
        return await self._one_link(links.c.connector == connector, links.c.incident_id == incident_id)

    async def get_link_by_external_id(self, connector: str, external_id: str) -> Link | None:
        return await self._one_link(links.c.connector == connector, links.c.external_id == external_id)

    async def put_link(self, link: Link, now: datetime) -> None:
        now = to_utc(now)
        await self._tx.write(lambda conn: self._upsert_link(conn, link, now))

    async def move_link(self, link: Link, *, from_incident_id: str, now: datetime,
                        follow_ups: Sequence[OutboxAction] = ()) -> None:
        now = to_utc(now)

        def body(conn: Connection) -> None:
            old = conn.execute(
                sa.delete(links)
                .where(links.c.connector == link.connector, links.c.incident_id == from_incident_id,
                       links.c.external_id == link.external_id)
                .returning(links.c.created_at)
            ).first()
            if old is None:
                raise KeyError(f"no link of {link.connector}/{from_incident_id} with external id {link.external_id}")
            conn.execute(sa.insert(links).values(
                connector=link.connector, incident_id=link.incident_id, external_id=link.external_id,
                incident_number=link.incident_number, event_id=link.event_id, alert_id=link.alert_id,
                generation=link.generation, open=link.open, data=dict(link.data), created_at=old[0],
                updated_at=now,
            ))
            for follow_up in follow_ups:
                self._insert_action(conn, follow_up, now)
        await self._tx.write(body)

    async def links_for(self, connector: str, incident_ids: Sequence[str]) -> dict[str, Link]:
        wanted = list(dict.fromkeys(incident_ids))
        found: dict[str, Link] = {}
        if not wanted:
            return found  # no transaction for nothing (an idle poll asks with no incident)

        def body(conn: Connection) -> dict[str, Link]:
            for chunk in _chunks(wanted, _IN_CHUNK):
                stmt = sa.select(links).where(links.c.connector == connector, links.c.incident_id.in_(chunk))
                for row in conn.execute(stmt).mappings():
                    link = _link_from_row(row)
                    found[link.incident_id] = link
            return found
        # One chunk is one statement; several must agree (one snapshot).
        return await (self._tx.read_one(body) if len(wanted) <= _IN_CHUNK else self._tx.read(body))

    async def open_links(self, connector: str, limit: int = 1000) -> list[Link]:
        stmt = (
            sa.select(links)
            .where(links.c.connector == connector, links.c.open.is_(True))
            .order_by(links.c.created_at, links.c.incident_id)
            .limit(limit)
        )
        rows = await self._tx.read_one(lambda conn: conn.execute(stmt).mappings().all())
        return [_link_from_row(row) for row in rows]

    async def _one_link(self, *where: sa.ColumnElement[bool]) -> Link | None:
        stmt = sa.select(links).where(*where)
        row = await self._tx.read_one(lambda conn: conn.execute(stmt).mappings().first())
        return None if row is None else _link_from_row(row)

    def _upsert_link(self, conn: Connection, link: Link, now: datetime) -> None:
        stmt = self._insert(links).values(
            connector=link.connector,
            incident_id=link.incident_id,
            external_id=link.external_id,
            incident_number=link.incident_number,
            event_id=link.event_id,
            alert_id=link.alert_id,
            generation=link.generation,
            open=link.open,
            data=dict(link.data),
            created_at=now,
            updated_at=now,
        )
        replaced = ("external_id", "incident_number", "event_id", "alert_id", "generation", "open", "data",
                    "updated_at")
        # created_at is kept from the first insert: it is when the incident was first linked.
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[links.c.connector, links.c.incident_id],
            set_={name: stmt.excluded[name] for name in replaced},
        ))

    # -- inbox -----------------------------------------------------------------------------------------------
    async def add_inbox(self, event: InboxEvent) -> bool:
        stmt = (
            self._insert(inbox)
            .values(
                connector=event.connector,
                event_id=event.event_id,
                payload=dict(event.payload),
                received_at=to_utc(event.received_at),
                state=event.state,
                attempts=event.attempts,
                last_error=event.last_error,
                processed_at=_utc_or_none(event.processed_at),
            )
            .on_conflict_do_nothing(index_elements=[inbox.c.connector, inbox.c.event_id])
            .returning(inbox.c.event_id)
        )
        return await self._tx.write(lambda conn: conn.execute(stmt).first() is not None)

    async def pending_inbox(self, connector: str, limit: int, *,
                            after: tuple[datetime, str] | None = None) -> list[InboxEvent]:
        where = [inbox.c.connector == connector, inbox.c.state == InboxState.PENDING]
        if after is not None:
            received, event_id = to_utc(after[0]), after[1]
            where.append(sa.or_(inbox.c.received_at > received,
                                sa.and_(inbox.c.received_at == received, inbox.c.event_id > event_id)))
        stmt = (
            sa.select(inbox)
            .where(*where)
            .order_by(inbox.c.received_at, inbox.c.event_id)
            .limit(limit)
        )
        rows = await self._tx.read_one(lambda conn: conn.execute(stmt).mappings().all())
        return [_inbox_from_row(row) for row in rows]

    async def finish_inbox(self, connector: str, event_id: str, now: datetime, *, state: str,
                           error: str | None = None, follow_ups: Sequence[OutboxAction] = (),
                           fence: Fence | None = None) -> None:
        now = to_utc(now)
        values: dict[str, Any] = {"state": state, "last_error": error}
        if state == InboxState.PENDING:
            values["attempts"] = inbox.c.attempts + 1
        elif state in _INBOX_FINAL_STATES:
            values["processed_at"] = now
        else:
            raise ValueError(f"unknown inbox state {state!r}")
        stmt = (
            sa.update(inbox)
            .where(inbox.c.connector == connector, inbox.c.event_id == event_id,
                   inbox.c.state == InboxState.PENDING)
            .values(**values)
            .returning(inbox.c.event_id)
        )

        def body(conn: Connection) -> None:
            self._check_fence(conn, fence)
            if conn.execute(stmt).first() is None:
                exists = conn.execute(sa.select(inbox.c.state).where(
                    inbox.c.connector == connector, inbox.c.event_id == event_id,
                )).first()
                if exists is None:
                    raise KeyError((connector, event_id))
                return  # already DONE/DEAD: finished once, its follow-ups were written then
            for follow_up in follow_ups:
                self._insert_action(conn, follow_up, now)
        await self._tx.write(body)

    # -- leases ----------------------------------------------------------------------------------------------
    async def acquire_lease(self, name: str, owner: str, now: datetime, ttl_seconds: float) -> Lease | None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive (got {ttl_seconds})")
        now = to_utc(now)
        expires_at = now + timedelta(seconds=ttl_seconds)
        insert = self._insert(leases).values(name=name, owner=owner, expires_at=expires_at, epoch=1)
        # Renewing our own unexpired lease keeps the epoch; anything else is an acquisition and increments it.
        renewal = sa.and_(leases.c.owner == owner, leases.c.expires_at > now)
        # One statement decides: insert if absent, else take over only if it is ours or has expired. On
        # PostgreSQL concurrent callers serialise on the row lock and re-check the WHERE against the winner's
        # row, so exactly one of them gets a row back; on SQLite the write lock serialises them.
        stmt = insert.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={"owner": insert.excluded.owner, "expires_at": insert.excluded.expires_at,
                  "epoch": sa.case((renewal, leases.c.epoch), else_=leases.c.epoch + 1)},
            where=sa.or_(leases.c.owner == owner, leases.c.expires_at <= now),
        ).returning(leases.c.owner, leases.c.epoch, leases.c.expires_at)
        row = await self._tx.write(lambda conn: conn.execute(stmt).first())
        return _lease(name, owner, row)

    async def renew_leases(self, owner: str, ttls: Mapping[str, float], now: datetime) -> dict[str, Lease]:
        if any(ttl <= 0 for ttl in ttls.values()):
            raise ValueError(f"ttl_seconds must be positive (got {sorted(set(ttls.values()))})")
        now = to_utc(now)
        by_ttl: dict[float, list[str]] = {}
        for name, ttl in ttls.items():
            by_ttl.setdefault(ttl, []).append(name)
        renewed: dict[str, Lease] = {}

        def body(conn: Connection) -> dict[str, Lease]:
            for ttl, names in by_ttl.items():
                expires_at = now + timedelta(seconds=ttl)
                for chunk in _chunks(sorted(names), _IN_CHUNK):
                    # Only our own unexpired leases: a renewal keeps the epoch and never acquires.
                    stmt = (sa.update(leases)
                            .where(leases.c.name.in_(chunk), leases.c.owner == owner, leases.c.expires_at > now)
                            .values(expires_at=expires_at)
                            .returning(leases.c.name, leases.c.epoch, leases.c.expires_at))
                    for name, epoch, expiry in conn.execute(stmt).all():
                        renewed[name] = Lease(name=name, owner=owner, epoch=int(epoch), expires_at=expiry)
            return renewed
        return await self._tx.write(body)

    async def release_lease(self, name: str, owner: str) -> None:
        # Expire rather than delete: the epoch must keep growing, or a fence from before the release could match
        # the next acquisition's epoch again.
        stmt = sa.update(leases).where(leases.c.name == name, leases.c.owner == owner).values(expires_at=_RELEASED)
        await self._tx.write(lambda conn: conn.execute(stmt))

    async def lease_holder(self, name: str) -> str | None:
        stmt = sa.select(leases.c.owner).where(leases.c.name == name)
        holder: str | None = await self._tx.read_one(lambda conn: conn.execute(stmt).scalar_one_or_none())
        return holder

    async def get_lease(self, name: str) -> Lease | None:
        stmt = sa.select(leases.c.owner, leases.c.epoch, leases.c.expires_at).where(leases.c.name == name)
        row = await self._tx.read_one(lambda conn: conn.execute(stmt).first())
        return None if row is None else _lease(name, row[0], row)

    async def take_over_lease(self, name: str, dead_owner: str, owner: str, now: datetime,
                              ttl_seconds: float) -> Lease | None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive (got {ttl_seconds})")
        stmt = (sa.update(leases).where(leases.c.name == name, leases.c.owner == dead_owner)
                .values(owner=owner, expires_at=to_utc(now) + timedelta(seconds=ttl_seconds),
                        epoch=leases.c.epoch + 1)
                .returning(leases.c.owner, leases.c.epoch, leases.c.expires_at))
        row = await self._tx.write(lambda conn: conn.execute(stmt).first())
        return _lease(name, owner, row)

    # -- cursors ---------------------------------------------------------------------------------------------
    async def get_cursor(self, connector: str, name: str) -> str | None:
        stmt = sa.select(cursors.c.value).where(cursors.c.connector == connector, cursors.c.name == name)
        value: str | None = await self._tx.read_one(lambda conn: conn.execute(stmt).scalar_one_or_none())
        return value

    async def set_cursor(self, connector: str, name: str, value: str, *, fence: Fence | None = None) -> None:
        stmt = self._insert(cursors).values(connector=connector, name=name, value=value)
        stmt = stmt.on_conflict_do_update(
            index_elements=[cursors.c.connector, cursors.c.name], set_={"value": stmt.excluded.value},
        )

        def body(conn: Connection) -> None:
            self._check_fence(conn, fence)
            conn.execute(stmt)
        await self._tx.write(body)

    # -- operator commands (``sentinel-signl4 outbox …``) ------------------------------------------------------
    async def get_actions_by_state(self, states: Sequence[ActionState] | None = None, *,
                                   connector: str | None = None, limit: int = 100) -> list[OutboxAction]:
        stmt = sa.select(outbox)
        if states is not None:
            stmt = stmt.where(outbox.c.state.in_([ActionState(state).value for state in states]))
        if connector is not None:
            stmt = stmt.where(outbox.c.connector == connector)
        stmt = stmt.order_by(outbox.c.created_at, outbox.c.key).limit(limit)
        rows = await self._tx.read_one(lambda conn: conn.execute(stmt).mappings().all())
        return [_action_from_row(row) for row in rows]

    async def requeue_dead(self, now: datetime, *, keys: Sequence[str] | None = None,
                           connector: str | None = None) -> list[str]:
        now = to_utc(now)
        values = {"state": ActionState.PENDING.value, "attempts": 0, "next_attempt_at": now, "updated_at": now}
        return await self._operator_update(values, (ActionState.DEAD,), keys=keys, connector=connector)

    async def discard_actions(self, now: datetime, reason: str, *, keys: Sequence[str] | None = None,
                              connector: str | None = None, by: str = "") -> list[str]:
        now = to_utc(now)
        values = {"state": ActionState.DISCARDED.value, "next_attempt_at": None, "updated_at": now,
                  "result": {"discarded_reason": reason, "discarded_by": by}}
        # Named rows may also be PENDING (a page the operator no longer wants); "all" means the dead letters only.
        states = (ActionState.DEAD,) if keys is None else (ActionState.DEAD, ActionState.PENDING)
        return await self._operator_update(values, states, keys=keys, connector=connector)

    async def _operator_update(self, values: Mapping[str, Any], states: Sequence[ActionState], *,
                               keys: Sequence[str] | None, connector: str | None) -> list[str]:
        """One transaction; the state check is in each UPDATE's WHERE, so a row the worker moved on is skipped."""
        where: list[sa.ColumnElement[bool]] = [outbox.c.state.in_([state.value for state in states])]
        if connector is not None:
            where.append(outbox.c.connector == connector)
        chunks: Iterable[Sequence[str] | None] = [None] if keys is None else _chunks(list(dict.fromkeys(keys)),
                                                                                      _IN_CHUNK)
        changed: list[str] = []

        def body(conn: Connection) -> None:
            for chunk in chunks:
                stmt = sa.update(outbox).where(*where)
                if chunk is not None:
                    stmt = stmt.where(outbox.c.key.in_(chunk))
                changed.extend(conn.execute(stmt.values(**values).returning(outbox.c.key)).scalars())
        await self._tx.write(body)
        return sorted(changed)
    # -- health ----------------------------------------------------------------------------------------------
    async def outbox_health(self, connector: str) -> OutboxHealth:
        is_raise = outbox.c.kind == ActionKind.RAISE_SIGNL.value
        is_open = outbox.c.state.in_(_OPEN_ACTION_STATES)
        open_raise = sa.and_(is_raise, is_open)
        stmt = sa.select(
            sa.func.min(sa.case((open_raise, outbox.c.created_at)), type_=UTCDateTime()),
            sa.func.coalesce(sa.func.sum(sa.case((open_raise, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case(
                (sa.and_(is_raise, outbox.c.state == ActionState.DEAD.value), 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case(
                (sa.and_(is_open, outbox.c.last_error.is_not(None)), 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((is_open, 1), else_=0)), 0),
        ).where(outbox.c.connector == connector)
        oldest, open_raises, dead, retrying, open_rows = await self._tx.read_one(lambda conn: conn.execute(stmt).one())
        return OutboxHealth(oldest_pending_at=oldest, open_raises=int(open_raises), dead_raises=int(dead),
                            retrying=int(retrying), open_rows=int(open_rows))


    # -- maintenance windows and pauses ----------------------------------------------------------------------
    async def add_pause(self, pause: Pause) -> None:
        values = {
            "id": pause.id, "connector": pause.connector, "severities": ",".join(pause.severities),
            "starts_at": to_utc(pause.starts_at), "ends_at": to_utc(pause.ends_at), "mode": pause.mode,
            "reason": pause.reason, "created_by": pause.created_by,
            "created_at": to_utc(pause.created_at or pause.starts_at),
            "cleared_at": _utc_or_none(pause.cleared_at), "cleared_by": pause.cleared_by,
        }
        await self._tx.write(lambda conn: conn.execute(sa.insert(pauses).values(**values)))

    async def pauses(self, now: datetime, *, connector: str | None = None) -> list[Pause]:
        stmt = sa.select(pauses).where(pauses.c.cleared_at.is_(None), pauses.c.ends_at > to_utc(now))
        if connector is not None:
            stmt = stmt.where(pauses.c.connector.in_([connector, "*"]))
        stmt = stmt.order_by(pauses.c.ends_at, pauses.c.id)
        rows = await self._tx.read_one(lambda conn: conn.execute(stmt).mappings().all())
        return [_pause_from_row(row) for row in rows]

    async def clear_pause(self, pause_id: str, now: datetime, *, by: str) -> Pause | None:
        now = to_utc(now)
        stmt = (sa.update(pauses)
                .where(pauses.c.id == pause_id, pauses.c.cleared_at.is_(None), pauses.c.ends_at > now)
                .values(cleared_at=now, cleared_by=by)
                .returning(*pauses.c))
        row = await self._tx.write(lambda conn: conn.execute(stmt).mappings().first())
        return None if row is None else _pause_from_row(row)

    async def release_held(self, connector: str, held_until: datetime, now: datetime) -> list[str]:
        now = to_utc(now)
        stmt = (sa.update(outbox)
                .where(outbox.c.connector == connector, outbox.c.state == ActionState.PENDING.value,
                       outbox.c.next_attempt_at == to_utc(held_until))
                .values(next_attempt_at=now, created_at=now, updated_at=now)
                .returning(outbox.c.key))
        keys = await self._tx.write(lambda conn: conn.execute(stmt).scalars().all())
        return sorted(str(key) for key in keys)

# -- rows → domain objects -----------------------------------------------------------------------------------
def _lease(name: str, owner: str, row: Sequence[Any] | None) -> Lease | None:
    """The lease ``owner`` got, from a ``RETURNING owner, epoch, expires_at`` row (None: someone else has it)."""
    if row is None or row[0] != owner:
        return None
    return Lease(name=name, owner=owner, epoch=int(row[1]), expires_at=row[2])


def _action_from_row(row: sa.RowMapping, *, in_flight_is_in_doubt: bool = False) -> OutboxAction:
    state = ActionState(row["state"])
    return OutboxAction(
        key=row["key"],
        connector=row["connector"],
        kind=ActionKind(row["kind"]),
        incident_id=row["incident_id"],
        payload=_mapping(row["payload"]),
        state=state,
        attempts=row["attempts"],
        in_doubt=bool(row["in_doubt"]) or (in_flight_is_in_doubt and state is ActionState.IN_FLIGHT),
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        result=None if row["result"] is None else _mapping(row["result"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _link_from_row(row: sa.RowMapping) -> Link:
    return Link(
        connector=row["connector"],
        incident_id=row["incident_id"],
        external_id=row["external_id"],
        incident_number=int(row["incident_number"]),
        event_id=row["event_id"],
        alert_id=row["alert_id"],
        generation=row["generation"],
        open=bool(row["open"]),
        data=_mapping(row["data"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _inbox_from_row(row: sa.RowMapping) -> InboxEvent:
    return InboxEvent(
        connector=row["connector"],
        event_id=row["event_id"],
        payload=_mapping(row["payload"]),
        received_at=row["received_at"],
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        processed_at=row["processed_at"],
    )


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object in the store, found {type(value).__name__}")
    return value


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _pause_from_row(row: sa.RowMapping) -> Pause:
    mode: PauseMode = "hold" if row["mode"] == "hold" else "skip"
    return Pause(
        id=row["id"], connector=row["connector"],
        severities=tuple(s for s in str(row["severities"]).split(",") if s),
        starts_at=row["starts_at"], ends_at=row["ends_at"], mode=mode, reason=row["reason"],
        created_by=row["created_by"], created_at=row["created_at"], cleared_at=row["cleared_at"],
        cleared_by=row["cleared_by"],
    )
