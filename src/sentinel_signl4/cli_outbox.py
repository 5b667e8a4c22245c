"""``sentinel-signl4 outbox``: look into the outbox and act on pages that could not be sent.

``list`` and ``show`` read; ``retry`` puts dead rows back in the queue (the connector's next cycle sends them through
the normal outbox path, so an in-doubt send is still looked up before it is repeated); ``discard`` gives rows up for
good. Each of the two writes one audit event (``operator_action``) to stderr, in the configured log format, whatever
the configured level. Every value printed passes the redactor of the configuration's secrets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import typer

from sentinel_signl4.config import Config, ConfigError, load_config
from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.domain.spans import span_text
from sentinel_signl4.operator_actions import audit as operator_audit
from sentinel_signl4.operator_actions import os_user, why_not
from sentinel_signl4.operator_actions import outcome as action_outcome
from sentinel_signl4.redact import Redactor
from sentinel_signl4.store import OutboxAction, StateStore

__all__ = ["CliSession", "outbox_app"]

outbox_app = typer.Typer(help="Inspect the outbox; retry or discard pages that could not be sent.",
                         no_args_is_help=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path to the TOML config file.")]
ConnectorOption = Annotated[str | None, typer.Option("--connector", help="Only rows of this connector.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
AllDeadOption = Annotated[bool, typer.Option(
    "--all-dead", help="Every dead row of --connector, or of every configured connector.")]
KeysArgument = Annotated[list[str] | None, typer.Argument(help="Outbox keys, as `outbox list` shows them.",
                                                          show_default=False)]

_T = TypeVar("_T")
_ERROR_WIDTH = 70


def _no_schema(exc: BaseException) -> bool:
    """Whether the store failed because its tables do not exist (SQLite and PostgreSQL wordings)."""
    text = str(exc)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


class CliSession:
    """What every subcommand needs: the configuration, its redactor and a way to run against the store."""

    def __init__(self, path: Path) -> None:
        try:
            self.config: Config = load_config(path)
        except ConfigError as exc:
            typer.echo(f"Invalid configuration:\n{exc}", err=True)
            raise typer.Exit(2) from None
        password = urlsplit(self.config.store.url).password if "://" in self.config.store.url else None
        self.redactor = Redactor([*self.config.secrets(), password])
        self.connectors = [c.name for c in self.config.connectors]

    def run(self, work: Callable[[StateStore], Awaitable[_T]]) -> _T:
        from sentinel_signl4.store.factory import open_store  # SQLAlchemy only when a command runs

        async def main() -> _T:
            store = open_store(self.config.store.url)
            try:
                return await work(store)
            finally:
                await store.close()

        try:
            return asyncio.run(main())
        except Exception as exc:  # noqa: BLE001 - any store failure ends the command with its (redacted) reason
            if _no_schema(exc):
                typer.echo(self.redactor.redact(
                    f"The state store {self.config.store.url} has no tables yet: no `sentinel-signl4 run` has used "
                    "it. Check [store] url in the configuration."), err=True)
            else:
                typer.echo(self.redactor.redact(f"Cannot use the state store: {type(exc).__name__}: {exc}"),
                           err=True)
            raise typer.Exit(1) from None

    def echo(self, text: str, *, err: bool = False) -> None:
        typer.echo(self.redactor.redact(text), err=err)

    def audit(self, action: str, *, keys: Sequence[str], outcome: str, reason: str = "",
              **details: Any) -> None:
        operator_audit(redactor=self.redactor, fmt=self.config.logging.format, actor=os_user(), action=action,
                       keys=list(keys), reason=reason, outcome=outcome, **details)

    def check_connector(self, connector: str | None) -> None:
        if connector is not None and connector not in self.connectors:
            self.echo(f"No connector named {connector!r} in the configuration; known: "
                      f"{', '.join(self.connectors)}.", err=True)
            raise typer.Exit(2)


# -- list / show ----------------------------------------------------------------------------------------------------

@outbox_app.command("list")
def list_rows(
    config: ConfigOption,
    connector: ConnectorOption = None,
    state: Annotated[ActionState | None, typer.Option("--state", help="Only rows in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows, oldest first.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List outbox rows: key, connector, kind, incident number, state, attempts, age and last error."""
    session = CliSession(config)

    async def read(store: StateStore) -> tuple[list[OutboxAction], dict[str, int]]:
        rows = await store.get_actions_by_state([state] if state else None, connector=connector, limit=limit)
        return rows, await _incident_numbers(store, rows)

    rows, numbers = session.run(read)
    now = datetime.now(UTC)
    if as_json:
        session.echo(json.dumps([_summary(row, numbers.get(row.key), now) for row in rows], indent=2))
        return
    if not rows:
        session.echo("No outbox rows match.")
        return
    table = [("KEY", "CONNECTOR", "KIND", "INCIDENT", "STATE", "ATTEMPTS", "AGE", "LAST ERROR")]
    for row in rows:
        number = numbers.get(row.key)
        table.append((row.key, row.connector, row.kind.value, "" if number is None else str(number),
                      row.state.value + (" (in doubt)" if row.in_doubt else ""), str(row.attempts),
                      _age(row.created_at, now), _one_line(row.last_error or "", _ERROR_WIDTH)))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    for line in table:
        session.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1])


@outbox_app.command()
def show(config: ConfigOption, key: Annotated[str, typer.Argument(help="The outbox key.")],
         as_json: JsonOption = False) -> None:
    """Show one outbox row whole: payload, result, last error."""
    session = CliSession(config)

    async def read(store: StateStore) -> tuple[OutboxAction | None, dict[str, int]]:
        row = await store.get_action(key)
        return row, (await _incident_numbers(store, [row]) if row is not None else {})

    row, numbers = session.run(read)
    if row is None:
        session.echo(f"No outbox row with key {key!r}.", err=True)
        raise typer.Exit(1)
    record = _full(row, numbers.get(row.key), datetime.now(UTC))
    if as_json:
        session.echo(json.dumps(record, indent=2))
        return
    for name, value in record.items():
        if isinstance(value, dict | list):
            text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            session.echo(f"{name}:\n  {text}")
        else:
            session.echo(f"{name}: {'' if value is None else value}")


# -- retry / discard ------------------------------------------------------------------------------------------------

@outbox_app.command()
def retry(
    config: ConfigOption,
    keys: KeysArgument = None,
    connector: ConnectorOption = None,
    all_dead: AllDeadOption = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit event).")] = "",
) -> None:
    """Put dead rows back in the queue, due now with attempts reset; the connector's next cycle sends them.

    A send whose outcome was unknown stays in doubt: it is looked up in SIGNL4 before it is repeated. Rows that
    are not dead (done, pending, in flight, discarded) are refused.
    """
    session = CliSession(config)
    _one_selection(session, keys, all_dead)
    session.check_connector(connector)
    now = datetime.now(UTC)

    async def act(store: StateStore) -> tuple[list[str], dict[str, str]]:
        if all_dead:
            done: list[str] = []
            for name in [connector] if connector else session.connectors:
                done += await store.requeue_dead(now, connector=name)
            return done, {}
        wanted = list(dict.fromkeys(keys or []))
        refused: dict[str, str] = {}
        for key in wanted:
            row = await store.get_action(key)
            if row is not None and row.connector not in session.connectors:
                refused[key] = f"its connector {row.connector!r} is not in the configuration: nothing would run it"
        requeued = await store.requeue_dead(now, keys=[k for k in wanted if k not in refused], connector=connector)
        for key in wanted:
            if key not in requeued and key not in refused:
                refused[key] = await why_not(store, key, connector, "retried")
        return requeued, refused

    requeued, refused = session.run(act)
    outcome = action_outcome(requeued, refused)
    session.audit("retry", keys=requeued, outcome=outcome, reason=reason, refused=refused, connector=connector)
    _report(session, refused)
    scope = f" of connector {connector}" if connector else ""
    session.echo(f"retry: {len(requeued)} dead row(s){scope} queued again"
                 + (f", {len(refused)} refused" if refused else "")
                 + ("; they are sent in the connector's next cycle." if requeued else "."))
    raise typer.Exit(0 if not refused and (requeued or all_dead) else 1)


@outbox_app.command()
def discard(
    config: ConfigOption,
    keys: KeysArgument = None,
    reason: Annotated[str, typer.Option("--reason", help="Why the rows are given up (required; kept with them).",
                                        show_default=False)] = "",
    connector: ConnectorOption = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead row of --connector.")] = False,
) -> None:
    """Give rows up for good: named dead or pending rows, or every dead row of one connector.

    A discarded row is final: it is never sent, and no longer counts as a dead letter. Its key stays, so the
    incident is not queued again by a later poll.
    """
    session = CliSession(config)
    _one_selection(session, keys, all_dead)
    if not reason.strip():
        session.echo("discard needs --reason TEXT (it is kept with the rows and in the audit log).", err=True)
        raise typer.Exit(2)
    if all_dead and connector is None:
        session.echo("discard --all-dead needs --connector NAME.", err=True)
        raise typer.Exit(2)
    actor = os_user()
    now = datetime.now(UTC)

    async def act(store: StateStore) -> tuple[list[str], dict[str, str]]:
        if all_dead:
            return await store.discard_actions(now, reason, connector=connector, by=actor), {}
        wanted = list(dict.fromkeys(keys or []))
        discarded = await store.discard_actions(now, reason, keys=wanted, connector=connector, by=actor)
        refused = {key: await why_not(store, key, connector, "discarded") for key in wanted if key not in discarded}
        return discarded, refused

    discarded, refused = session.run(act)
    session.audit("discard", keys=discarded, outcome=action_outcome(discarded, refused), reason=reason, refused=refused,
                  connector=connector)
    _report(session, refused)
    scope = f" of connector {connector}" if connector else ""
    session.echo(f"discard: {len(discarded)} row(s){scope} discarded"
                 + (f", {len(refused)} refused" if refused else "") + ".")
    raise typer.Exit(0 if not refused and (discarded or all_dead) else 1)


# -- helpers --------------------------------------------------------------------------------------------------------

def _one_selection(session: CliSession, keys: Sequence[str] | None, all_dead: bool) -> None:
    if bool(keys) == all_dead:
        session.echo("Name the rows: give KEY… or --all-dead (not both).", err=True)
        raise typer.Exit(2)


def _report(session: CliSession, refused: Mapping[str, str]) -> None:
    for key, why in refused.items():
        session.echo(f"  {key}: {why}", err=True)


async def _incident_numbers(store: StateStore, rows: Sequence[OutboxAction]) -> dict[str, int]:
    """Incident number per row key: from the payload (raise rows), else from the incident's link."""
    numbers: dict[str, int] = {}
    missing: dict[str, list[OutboxAction]] = {}
    for row in rows:
        number = row.payload.get("incident_number")
        if isinstance(number, int):
            numbers[row.key] = number
        else:
            missing.setdefault(row.connector, []).append(row)
    for connector, items in missing.items():
        links = await store.links_for(connector, [row.incident_id for row in items])
        for row in items:
            if row.incident_id in links:
                numbers[row.key] = links[row.incident_id].incident_number
    return numbers


def _summary(row: OutboxAction, number: int | None, now: datetime) -> dict[str, Any]:
    return {
        "key": row.key, "connector": row.connector, "kind": row.kind.value, "incident_number": number,
        "state": row.state.value, "in_doubt": row.in_doubt, "attempts": row.attempts,
        "age_seconds": _seconds(row.created_at, now), "last_error": row.last_error,
    }


def _full(row: OutboxAction, number: int | None, now: datetime) -> dict[str, Any]:
    return {
        **_summary(row, number, now), "incident_id": row.incident_id,
        "next_attempt_at": _iso(row.next_attempt_at), "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at), "payload": dict(row.payload),
        "result": None if row.result is None else dict(row.result),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def _seconds(then: datetime | None, now: datetime) -> int | None:
    return None if then is None else max(0, int((now - then).total_seconds()))


def _age(then: datetime | None, now: datetime) -> str:
    seconds = _seconds(then, now)
    return "?" if seconds is None else span_text(seconds)


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
