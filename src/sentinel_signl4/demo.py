"""``sentinel-signl4 demo``: the real connector against emulated Entra ID, Sentinel and SIGNL4 over HTTPS.

Narrates what happens: which incidents page and which are skipped (and why), a burst with injected faults that
is survived without a duplicate, responders acting on their phones, a Defender merge followed, and the result on
the incident side. ``source="graph"`` runs the same story against Defender XDR incidents through the emulated
Microsoft Graph security API (the source-specific parts are in ``demo_sources.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sentinel_signl4.bootstrap import ConnectorParts, Runtime, build_runtime
from sentinel_signl4.config import parse_config
from sentinel_signl4.demo_config import emulator_config
from sentinel_signl4.demo_sources import DemoSource, burst_severity, demo_source
from sentinel_signl4.domain import (
    ActionKind,
    ActionState,
    IncidentFilter,
    SignlRequest,
    external_id_for,
    skip_reason,
)
from sentinel_signl4.domain.phone_view import format_phone_view
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.logs import configure_logging
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.seed import DemoWorld, seed_demo
from sentinel_signl4_emulators.server import EmulatorServer
from sentinel_signl4_emulators.signl4.model import AlertStatus

__all__ = ["run_demo"]

Echo = Callable[[str], None]
CONNECTOR = "contoso"
BURST = 30


class _Narrator:
    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.started = time.monotonic()

    def step(self, title: str) -> None:
        self.echo("")
        self.echo(f"== [{time.monotonic() - self.started:5.1f}s] {title}")

    def line(self, text: str = "") -> None:
        self.echo(f"   {text}" if text else "")


async def run_demo(workdir: Path, *, keep_running: bool = False, echo: Echo = print,
                   source: str = "sentinel") -> int:
    """Run the scripted demo against ``source`` ("sentinel" or "graph"); return 0 when every promise held
    (exactly one Signl per matching incident)."""
    say = _Narrator(echo)
    _fresh_workdir(workdir)
    state = EmulatorState.new()
    with EmulatorServer(state, workdir / "certs") as server:
        world = seed_demo(state, datetime.now(UTC))
        config_text = emulator_config(
            world, server.base_url, ca_path=server.ca_path, store_url=f"sqlite:///{(workdir / 'state.db').resolve()}",
            name=CONNECTOR, display_name="Contoso Ltd", source=source,
            overrides={"sync": {"mode": "poll", "poll_signl4_interval": "1s",
                                "owner_map": {u.mail: u.object_id for u in world.users}}},
        )
        (workdir / "config.toml").write_text(config_text, encoding="utf-8")
        config = parse_config(config_text, source=str(workdir / "config.toml"))
        # Connector log lines go to a file so the narration stays readable; secrets are redacted there too.
        with (workdir / "connector.log").open("w", encoding="utf-8") as log_file:
            configure_logging(level="info", fmt="console", secrets=config.secrets(), stream=log_file)
            say.step("Emulated Azure (Entra ID, Sentinel, Graph) and SIGNL4 are up over HTTPS"
                     + (": the connector reads Defender XDR incidents through Graph" if source == "graph" else ""))
            say.line(f"endpoint  {server.base_url}   CA  {server.ca_path}")
            say.line(f"config    {workdir / 'config.toml'}   log  {workdir / 'connector.log'}")
            runtime = await build_runtime(config)
            try:
                ok = await _script(say, state, world, runtime, demo_source(source, state, world))
            finally:
                await runtime.aclose()
            if keep_running:
                say.step("Emulators keep running (Ctrl-C to stop)")
                say.line(f"sentinel-signl4 run --config {workdir / 'config.toml'}")
                with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
                    await asyncio.Event().wait()
    return 0 if ok else 1


def _fresh_workdir(workdir: Path) -> None:
    """Each demo starts from nothing: a new CA, an empty database, an empty log."""
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("state.db", "state.db-wal", "state.db-shm", "connector.log"):
        (workdir / stale).unlink(missing_ok=True)
    shutil.rmtree(workdir / "certs", ignore_errors=True)


async def _script(say: _Narrator, state: EmulatorState, world: DemoWorld, runtime: Runtime,
                  side: DemoSource) -> bool:
    parts = runtime.connectors[CONNECTOR]
    connector = parts.runtime
    flt = connector.forward.flt
    now = datetime.now(UTC)

    say.step(f"{side.title} holds {len(side.incidents())} incidents")
    _show_expectations(say, side, flt, now, parts.config.sync.tag)

    say.step("Cycle 1: the connector polls (server-side $filter, every page) and pages")
    report = await connector.run_once(datetime.now(UTC))
    _show_report(say, report)
    await _show_phone(say, runtime)

    say.step(f"A burst: {BURST} new incidents arrive while things go wrong")
    source_faults = side.faults()
    faults = [
        FaultRule(path=r"^/webhook/", method="POST", kind="status", status=429, retry_after=2, count=3),
        source_faults[0][0],
        FaultRule(path=r"^/webhook/", method="POST", kind="reset", phase="after", count=1),
        source_faults[1][0],
    ]
    for rule in faults:
        state.faults.add(rule)
    say.line(f"injected: SIGNL4 answers 429 (Retry-After: 2) x3, {source_faults[0][1]},")
    say.line("          SIGNL4 takes an event but the connection drops before the answer x1 (outcome unknown),")
    say.line(f"          {source_faults[1][1]}")
    for n in range(BURST):
        side.create(f"Suspicious PowerShell on WKS-{100 + n}", burst_severity(n),
                    datetime.now(UTC) - timedelta(seconds=n))
    await _until_quiet(say, connector, runtime, deadline=40.0)
    fired = ", ".join(f"{r.kind} {r.status if r.kind == 'status' else r.phase}: {r.fired}" for r in faults)
    say.line(f"faults that fired: {fired}")
    state.faults.clear()

    say.step("Responders act on their phones")
    ok = await _responders(say, state, world, runtime, parts, side)

    say.step("Microsoft Defender merges a paged incident into a new one")
    ok = await _merge(say, state, side, connector) and ok

    say.step(f"An analyst closes an incident in {side.portal}: its Signl is resolved")
    ok = await _analyst_close(say, state, side, connector) and ok

    say.step("Verdict")
    return _verdict(say, state, side, flt, runtime, parts) and ok


def _show_expectations(say: _Narrator, side: DemoSource, flt: IncidentFilter, now: datetime, tag: str) -> None:
    for incident in sorted(side.incidents(), key=lambda i: i.number):
        reason = skip_reason(incident, flt, now)
        verdict = "page" if reason is None else f"skip: {reason.value}"
        if reason is None and tag and incident.has_label(tag):
            verdict = "skip: already tagged"
        if incident.merged:
            verdict = "skip: merged by Defender"
        age = now - incident.created
        say.line(f"#{incident.number}  {incident.severity.value:<13} {incident.status.value:<7} "
                 f"{_age(age):>5} old  {verdict:<22} {incident.title[:52]}")


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes}m" if minutes < 120 else f"{minutes // 60}h"


def _show_report(say: _Narrator, report: PollReport) -> None:
    say.line(f"seen {report.seen}, queued {len(report.enqueued)}, Signls raised {report.done[ActionKind.RAISE_SIGNL]}, "
             f"tagged {report.done[ActionKind.TAG_INCIDENT]}")
    for incident, reason in report.skipped:
        say.line(f"skipped #{incident.number}: {reason.value}")
    if report.retried or report.errors:
        say.line(f"retries scheduled {sum(report.retried.values())}; errors: {'; '.join(report.errors) or 'none'}")


async def _show_phone(say: _Narrator, runtime: Runtime) -> None:
    """The richest Signl of the first cycle exactly as it was sent (from the outbox), drawn like the app shows it."""
    sent = [SignlRequest.from_record(row.payload["request"])
            for row in await runtime.store.list_actions(CONNECTOR, states=[ActionState.DONE], limit=500)
            if row.kind is ActionKind.RAISE_SIGNL]
    if not sent:
        return
    richest = max(sent, key=lambda r: (len(r.parameters), len(r.message)))
    say.line("")
    say.line("What the responder's phone shows (title, text, then one tile per parameter):")
    for line in format_phone_view(richest).splitlines():
        say.line(f"  {line}")


async def _until_quiet(say: _Narrator, connector: Any, runtime: Runtime, *, deadline: float) -> None:
    started = time.monotonic()
    cycle = 1
    while time.monotonic() - started < deadline:
        cycle += 1
        report = await connector.run_once(datetime.now(UTC))
        counts = await runtime.store.count_actions(CONNECTOR)
        pending = counts.get(ActionState.PENDING, 0) + counts.get(ActionState.IN_FLIGHT, 0)
        say.line(f"cycle {cycle}: queued {len(report.enqueued)}, raised {report.done[ActionKind.RAISE_SIGNL]} "
                 f"(in-doubt resolved by lookup: {report.reconciled_sends}), tagged "
                 f"{report.done[ActionKind.TAG_INCIDENT]}, retry later {sum(report.retried.values())}, "
                 f"still pending {pending}" + (f"  [{report.errors[0][:60]}]" if report.errors else ""))
        if pending == 0 and not report.enqueued:
            return
        await asyncio.sleep(1.0)
    say.line("still pending after the demo's time budget; `sentinel-signl4 run` would carry on")


async def _responders(say: _Narrator, state: EmulatorState, world: DemoWorld, runtime: Runtime,
                      parts: ConnectorParts, side: DemoSource) -> bool:
    links = await runtime.store.open_links(CONNECTOR)
    if len(links) < 3:
        say.line("not enough open Signls to act on")
        return False
    adele, megan = world.users[0], world.users[1]
    first, second = links[0], links[1]
    alert_a = state.signl4.list_alerts(external_id=first.external_id)[0]
    alert_b = state.signl4.list_alerts(external_id=second.external_id)[0]
    state.signl4.acknowledge(alert_a.id, adele.mail)
    say.line(f"{adele.display_name} acknowledges #{first.incident_number}")
    state.signl4.annotate(alert_b.id, megan.mail, "#fp:logic the scanner is ours, tuning the rule")
    say.line(f"{megan.display_name} annotates #{second.incident_number}: "
             "'#fp:logic the scanner is ours, tuning the rule'")
    state.signl4.close(alert_b.id, megan.mail)
    say.line(f"{megan.display_name} closes #{second.incident_number}")
    say.line("(no inbound connection needed: this demo polls the SIGNL4 REST API; the outbound webhook works too)")
    for _ in range(6):
        await parts.runtime.run_once(datetime.now(UTC))
        await asyncio.sleep(1.1)
    ok = True
    for link, expect in ((first, "Active"), (second, "Closed")):
        now_reads = side.state_of(link.incident_id)
        say.line(f"{side.kind.capitalize()} #{link.incident_number}: status {now_reads.status}, owner "
                 f"{now_reads.owner}, classification {now_reads.classification}")
        for comment in now_reads.comments:
            say.line(f"    comment: {comment[:100]}")
        ok = ok and now_reads.status == expect
    return ok


async def _merge(say: _Narrator, state: EmulatorState, side: DemoSource, connector: Any) -> bool:
    """Defender correlates a paged incident with a newer one and merges it: the Signl follows (or is resolved)."""
    links = await connector.store.open_links(CONNECTOR)
    if len(links) < 4:
        say.line("not enough open Signls for a merge")
        return False
    link = links[2]
    survivor = side.create("Multi-stage incident involving Execution on one endpoint", "High", datetime.now(UTC))
    side.merge(link.incident_id, survivor)
    say.line(f"#{link.incident_number} is merged into a new incident before the connector has seen the new one")
    report = await connector.run_once(datetime.now(UTC))
    await connector.run_once(datetime.now(UTC))
    what = {"relinked": "the Signl now follows the survivor (same ExternalID)",
            "resolved": "its Signl is resolved (the survivor has its own)",
            "unknown_survivor": "its Signl is resolved; the survivor inherited the tag, so it does not page again"}
    for merged, into, outcome in report.merged:
        target = f"#{into.number}" if into else "an incident the Sentinel API does not name"
        say.line(f"#{merged.number} merged into {target}: {what.get(outcome, outcome)}")
    alert = state.signl4.list_alerts(external_id=link.external_id)[0]
    for note in alert.annotations:
        if note.text.startswith("[sentinel-signl4]"):
            say.line(f"annotation on the Signl: {note.text[:110]}")
    new_signls = state.signl4.list_alerts(external_id=external_id_for(CONNECTOR, survivor))
    say.line(f"Signls raised for the surviving incident: {len(new_signls)} (the attack already paged once)")
    return bool(report.merged) and not new_signls


async def _analyst_close(say: _Narrator, state: EmulatorState, side: DemoSource, connector: Any) -> bool:
    links = await connector.store.open_links(CONNECTOR)
    if not links:
        return False
    link = links[-1]
    side.analyst_close(link.incident_id)
    say.line(f"analyst closes #{link.incident_number} as TruePositive in {side.portal}")
    for _ in range(2):
        await connector.run_once(datetime.now(UTC))
    alert = state.signl4.list_alerts(external_id=link.external_id)[0]
    closed = alert.status == AlertStatus.CLOSED
    say.line(f"SIGNL4 Signl for #{link.incident_number}: {'closed' if closed else 'still open'}")
    return closed


def _verdict(say: _Narrator, state: EmulatorState, side: DemoSource, flt: IncidentFilter, runtime: Runtime,
             parts: ConnectorParts) -> bool:
    counts = Counter(a.external_id for a in state.signl4.list_alerts())
    incidents = side.incidents()
    linked = [i for i in incidents if counts[external_id_for(CONNECTOR, i.resource_id)]]
    duplicates = sum(1 for c in counts.values() if c > 1)
    missed = 0
    for incident in incidents:
        # An incident that inherited the tag through a merge is covered by the merged incident's Signl.
        if (incident.severity in flt.severities and incident.created >= datetime.now(UTC) - flt.max_age
                and not counts[external_id_for(CONNECTOR, incident.resource_id)]
                and incident.status.value == "New" and not incident.has_label("SIGNL4")):
            missed += 1
    say.line(f"incidents paged: {len(linked)}; duplicate Signls: {duplicates}; matching incidents missed: {missed}")
    say.line(f"SIGNL4 alerts in the emulator: {sum(counts.values())}; connector status: "
             f"{parts.runtime.health.state.value}")
    good = duplicates == 0 and missed == 0
    say.line("every matching incident paged exactly once" if good else "PROMISE BROKEN: see the log")
    return good
