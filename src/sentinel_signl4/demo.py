"""``sentinel-signl4 demo``: the real connector against emulated Entra ID, Sentinel and SIGNL4 over HTTPS.

Narrates what happens: which incidents page and which are skipped (and why), a burst with injected faults that
is survived without a duplicate, responders acting on their phones, and the result on the Sentinel side.
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
from sentinel_signl4.domain import (
    ActionKind,
    ActionState,
    IncidentFilter,
    SignlRequest,
    external_id_for,
    skip_reason,
)
from sentinel_signl4.domain.phone_view import format_phone_view
from sentinel_signl4.emulators.app import EmulatorState
from sentinel_signl4.emulators.connector_config import emulator_config
from sentinel_signl4.emulators.faults import FaultRule
from sentinel_signl4.emulators.seed import DemoWorld, seed_demo
from sentinel_signl4.emulators.server import EmulatorServer
from sentinel_signl4.emulators.signl4_model import AlertStatus
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.logs import configure_logging

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


async def run_demo(workdir: Path, *, keep_running: bool = False, echo: Echo = print) -> int:
    """Run the scripted demo; return 0 when every promise held (exactly one Signl per matching incident)."""
    say = _Narrator(echo)
    _fresh_workdir(workdir)
    state = EmulatorState.new()
    with EmulatorServer(state, workdir / "certs") as server:
        world = seed_demo(state, datetime.now(UTC))
        config_text = emulator_config(
            world, server.base_url, ca_path=server.ca_path, store_url=f"sqlite:///{(workdir / 'state.db').resolve()}",
            name=CONNECTOR, display_name="Contoso Ltd",
            overrides={"sync": {"mode": "poll", "poll_signl4_interval": "1s",
                                "owner_map": {u.mail: u.object_id for u in world.users}}},
        )
        (workdir / "config.toml").write_text(config_text, encoding="utf-8")
        config = parse_config(config_text, source=str(workdir / "config.toml"))
        # Connector log lines go to a file so the narration stays readable; secrets are redacted there too.
        with (workdir / "connector.log").open("w", encoding="utf-8") as log_file:
            configure_logging(level="info", fmt="console", secrets=config.secrets(), stream=log_file)
            say.step("Emulated Azure (Entra ID, Sentinel) and SIGNL4 are up over HTTPS")
            say.line(f"endpoint  {server.base_url}   CA  {server.ca_path}")
            say.line(f"config    {workdir / 'config.toml'}   log  {workdir / 'connector.log'}")
            runtime = await build_runtime(config)
            try:
                ok = await _script(say, state, world, runtime)
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


async def _script(say: _Narrator, state: EmulatorState, world: DemoWorld, runtime: Runtime) -> bool:
    parts = runtime.connectors[CONNECTOR]
    connector = parts.runtime
    flt = connector.forward.flt
    now = datetime.now(UTC)

    say.step(f"Sentinel workspace '{world.workspace_name}' holds {len(world.incident_names)} incidents")
    _show_expectations(say, state, world, flt, now, parts.config.sync.tag)

    say.step("Cycle 1: the connector polls (one list query, server-side $filter) and pages")
    report = await connector.run_once(datetime.now(UTC))
    _show_report(say, report)
    await _show_phone(say, runtime)

    say.step(f"A burst: {BURST} new incidents arrive while things go wrong")
    faults = [
        FaultRule(path=r"^/webhook/", method="POST", kind="status", status=429, retry_after=2, count=3),
        FaultRule(path=r"/incidents$", method="GET", kind="status", status=503, count=2),
        FaultRule(path=r"^/webhook/", method="POST", kind="reset", phase="after", count=1),
        FaultRule(path=r"/incidents/[^/]+$", method="PUT", kind="status", status=500, count=2),
    ]
    for rule in faults:
        state.faults.add(rule)
    say.line("injected: SIGNL4 answers 429 (Retry-After: 2) x3, Sentinel list 503 x2,")
    say.line("          SIGNL4 takes an event but the connection drops before the answer x1 (outcome unknown),")
    say.line("          Sentinel PUT 500 x2")
    severities = ["High", "Medium", "Low", "Informational"]
    for n in range(BURST):
        state.sentinel.create_incident(world.workspace, title=f"Suspicious PowerShell on WKS-{100 + n}",
                                       severity=severities[n % 4], created=datetime.now(UTC) - timedelta(seconds=n),
                                       description="Encoded command line spawned by an Office process.",
                                       product_names=["Microsoft Defender for Endpoint"], tactics=["Execution"])
    await _until_quiet(say, connector, runtime, deadline=40.0)
    fired = ", ".join(f"{r.kind} {r.status if r.kind == 'status' else r.phase}: {r.fired}" for r in faults)
    say.line(f"faults that fired: {fired}")
    state.faults.clear()

    say.step("Responders act on their phones")
    ok = await _responders(say, state, world, runtime, parts)

    say.step("An analyst closes an incident in Sentinel: its Signl is resolved")
    ok = await _analyst_close(say, state, world, connector) and ok

    say.step("Verdict")
    return _verdict(say, state, world, flt, runtime, parts) and ok


def _show_expectations(say: _Narrator, state: EmulatorState, world: DemoWorld, flt: IncidentFilter,
                       now: datetime, tag: str) -> None:
    from sentinel_signl4.clients.sentinel_mapping import incident_from_arm

    for resource in sorted(state.sentinel.list_incidents(world.workspace),
                           key=lambda r: r["properties"]["incidentNumber"]):
        incident = incident_from_arm(resource)
        reason = skip_reason(incident, flt, now)
        verdict = "page" if reason is None else f"skip: {reason.value}"
        if reason is None and tag and incident.has_label(tag):
            verdict = "skip: already tagged"
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
                      parts: ConnectorParts) -> bool:
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
        props = state.sentinel.get_incident(world.workspace, link.incident_id.rsplit("/", 1)[-1])["properties"]
        owner = (props.get("owner") or {}).get("assignedTo") or "-"
        classification = props.get("classification") or "-"
        reason = props.get("classificationReason") or ""
        say.line(f"Sentinel #{link.incident_number}: status {props['status']}, owner {owner}, "
                 f"classification {classification} {reason}".rstrip())
        for comment in state.sentinel.comments(world.workspace, link.incident_id.rsplit("/", 1)[-1]):
            say.line(f"    comment: {comment['properties']['message'][:100]}")
        ok = ok and props["status"] == expect
    return ok


async def _analyst_close(say: _Narrator, state: EmulatorState, world: DemoWorld, connector: Any) -> bool:
    links = await connector.store.open_links(CONNECTOR)
    if not links:
        return False
    link = links[-1]
    name = link.incident_id.rsplit("/", 1)[-1]
    state.sentinel.close_incident_as_analyst(world.workspace, name, classification="TruePositive",
                                             classification_reason="SuspiciousActivity")
    say.line(f"analyst closes #{link.incident_number} as TruePositive in the Sentinel portal")
    for _ in range(2):
        await connector.run_once(datetime.now(UTC))
    alert = state.signl4.list_alerts(external_id=link.external_id)[0]
    closed = alert.status == AlertStatus.CLOSED
    say.line(f"SIGNL4 Signl for #{link.incident_number}: {'closed' if closed else 'still open'}")
    return closed


def _verdict(say: _Narrator, state: EmulatorState, world: DemoWorld, flt: IncidentFilter, runtime: Runtime,
             parts: ConnectorParts) -> bool:
    counts = Counter(a.external_id for a in state.signl4.list_alerts())
    linked = [i for i in state.sentinel.list_incidents(world.workspace)
              if counts[external_id_for(CONNECTOR, i["id"])]]
    duplicates = sum(1 for c in counts.values() if c > 1)
    missed = 0
    for resource in state.sentinel.list_incidents(world.workspace):
        created = datetime.fromisoformat(resource["properties"]["createdTimeUtc"])
        labels = [label["labelName"] for label in resource["properties"]["labels"]]
        if (resource["properties"]["severity"] in {s.value for s in flt.severities}
                and created >= datetime.now(UTC) - flt.max_age
                and not counts[external_id_for(CONNECTOR, resource["id"])]
                and resource["properties"]["status"] == "New" and "SIGNL4" not in labels):
            missed += 1
    say.line(f"incidents paged: {len(linked)}; duplicate Signls: {duplicates}; matching incidents missed: {missed}")
    say.line(f"SIGNL4 alerts in the emulator: {sum(counts.values())}; connector status: "
             f"{parts.runtime.health.state.value}")
    good = duplicates == 0 and missed == 0
    say.line("every matching incident paged exactly once" if good else "PROMISE BROKEN: see the log")
    return good
