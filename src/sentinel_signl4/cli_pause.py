"""``sentinel-signl4 pause``: maintenance windows and pauses (what they do: ``store/pauses.py``).

``add`` sets one (a connector or ``--all``, some or every severity, until a time or for a duration, skip or hold),
``list`` shows those in force or still to come, ``clear`` ends one now. ``add`` and ``clear`` write the
``operator_action`` audit event, like ``outbox retry``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from sentinel_signl4.cli_outbox import CliSession
from sentinel_signl4.operator_actions import os_user
from sentinel_signl4.pause_ops import PauseError, clear_pause, new_pause, parse_until
from sentinel_signl4.store import StateStore
from sentinel_signl4.store.pauses import ALL_CONNECTORS, Pause

__all__ = ["pause_app"]

pause_app = typer.Typer(help="Maintenance windows: pause paging for a connector or some severities.",
                        no_args_is_help=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path to the TOML config file.")]


@pause_app.command("add")
def add(
    config: ConfigOption,
    connector: Annotated[str | None, typer.Option("--connector", help="The connector to pause.")] = None,
    all_connectors: Annotated[bool, typer.Option("--all", help="Pause every connector.")] = False,
    severity: Annotated[list[str] | None, typer.Option(
        "--severity", help="Only incidents of this severity (repeatable); default: every severity.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="End time, ISO 8601 with zone.")] = None,
    duration: Annotated[str | None, typer.Option("--for", help="Duration from now: 90m, 2h, 1d.")] = None,
    mode: Annotated[str, typer.Option(
        "--mode", help="skip: record incidents and never page them; hold: page them when the window ends.")] = "skip",
    reason: Annotated[str, typer.Option("--reason", help="Why (shown on the console, kept in the audit).")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the pause as JSON.")] = False,
) -> None:
    """Pause paging now, until a time or for a duration."""
    session = CliSession(config)
    if (connector is None) == (not all_connectors):
        session.echo("Name the connector (--connector NAME) or give --all.", err=True)
        raise typer.Exit(2)
    now = datetime.now(UTC)
    try:
        ends = parse_until(now, until=until, duration=duration)
        pause = new_pause(session.config, connector=connector or ALL_CONNECTORS, severities=severity or [],
                          ends_at=ends, mode=mode, reason=reason, by=os_user(), now=now)
    except PauseError as exc:
        session.echo(f"Cannot pause: {exc}.", err=True)
        raise typer.Exit(2) from None

    async def act(store: StateStore) -> None:
        await store.add_pause(pause)

    session.run(act)
    session.audit("pause", keys=[pause.id], outcome="ok", reason=pause.reason, connector=pause.connector,
                  severities=list(pause.severities), mode=pause.mode, until=pause.ends_at.isoformat())
    session.echo(json.dumps(_record(pause)) if as_json else f"{pause.id}: {pause.describe()}")


@pause_app.command("list")
def list_pauses(config: ConfigOption,
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Pauses in force or still to come."""
    session = CliSession(config)
    now = datetime.now(UTC)

    async def read(store: StateStore) -> list[Pause]:
        return await store.pauses(now)

    found = session.run(read)
    if as_json:
        session.echo(json.dumps([_record(p) for p in found], indent=2))
    elif not found:
        session.echo("No pause in force or to come.")
    for pause in [] if as_json else found:
        session.echo(f"{pause.id}: {pause.describe()} (set by {pause.created_by or '?'})")


@pause_app.command("clear")
def clear(config: ConfigOption, pause_id: Annotated[str, typer.Argument(help="The pause id, as `pause list` shows.")],
          ) -> None:
    """End a pause now; pages it held are sent in the connector's next cycle."""
    session = CliSession(config)
    now = datetime.now(UTC)

    async def act(store: StateStore) -> tuple[Pause | None, list[str]]:
        return await clear_pause(store, session.config, pause_id, now=now, by=os_user())

    cleared, released = session.run(act)
    session.audit("unpause", keys=[pause_id], outcome="ok" if cleared else "nothing_to_do", released=released)
    if cleared is None:
        session.echo(f"No pause {pause_id!r} in force or to come.", err=True)
        raise typer.Exit(1)
    session.echo(f"{pause_id} cleared" + (f"; {len(released)} held page(s) are sent next" if released else "") + ".")


def _record(pause: Pause) -> dict[str, object]:
    return {"id": pause.id, "connector": pause.connector, "severities": list(pause.severities),
            "starts_at": pause.starts_at.isoformat(), "ends_at": pause.ends_at.isoformat(), "mode": pause.mode,
            "reason": pause.reason, "created_by": pause.created_by}
