"""What one idle poll of one connector costs: requests, CPU time and wall time per cycle.

The emulators run in their own process with the demo world; this process is the connector. After an initial sync
(the demo world's matching incidents raised and tagged), the connector runs ``--cycles`` idle cycles exactly as the
supervisor does (lease renewal, then ``run_once``), on a simulated clock that advances by the poll interval per
cycle. That way the periodic work that does not happen every poll — the SIGNL4 status poll (every 60 s by default)
and the reconciliation sweep (every 15 min) — comes up at its real frequency, and the mean over a simulated hour is
the true amortised cost. CPU is this process's ``time.process_time()`` around each cycle (event loop, SQLite threads,
TLS, JSON); requests are counted by the emulator process, per endpoint.

Two configurations: with a SIGNL4 API key and no inbound webhook (``sync.mode`` auto → ``poll``: the connector asks
SIGNL4 for status changes), and without an API key, receiving SIGNL4's outbound webhook (``sync.mode`` → ``webhook``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _emulator import EmulatorProcess
from _report import add_output_arguments, finite, heading, machine, percentile, publish, report, saved_report, table
from sentinel_signl4.bootstrap import build_runtime
from sentinel_signl4.clients.ratelimit import reset_limiters
from sentinel_signl4.domain import ActionState
from sentinel_signl4.logs import configure_logging

CONNECTOR = "contoso"


@dataclass
class Variant:
    label: str
    api_key: bool
    sync: dict[str, str]


VARIANTS = (
    Variant("API key, SIGNL4 polled (sync.mode auto → poll)", True, {}),
    Variant("no API key, outbound webhook (sync.mode → webhook)", False,
            {"webhook_token": "bench-webhook-token-0123456789"}),
)


@dataclass
class Result:
    variant: Variant
    interval: float
    cpu_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    by_kind: Counter[str] = field(default_factory=Counter)
    open_links: int = 0


async def measure(emu: EmulatorProcess, variant: Variant, workdir: Path, *, cycles: int, interval: float) -> Result:
    reset_limiters()
    config = emu.config(store_url=f"sqlite:///{workdir / f'idle-{variant.api_key}.db'}", api_key=variant.api_key,
                        overrides={"connector": {"poll_interval": f"{interval:g}s"}, "sync": variant.sync})
    runtime = await build_runtime(config)
    try:
        rt = runtime.connectors[CONNECTOR].runtime
        now = datetime.now(UTC)
        for _ in range(10):  # initial sync: raise and tag the demo world's matching incidents
            await rt.run_once(now)
            counts = await runtime.store.count_actions(CONNECTOR)
            if counts[ActionState.PENDING] + counts[ActionState.IN_FLIGHT] == 0:
                break
            now += timedelta(seconds=interval)
        result = Result(variant, interval, open_links=len(await runtime.store.open_links(CONNECTOR)))
        lease, owner, ttl = f"connector:{CONNECTOR}", "bench", max(60.0, 3 * interval)
        for _ in range(cycles):
            now += timedelta(seconds=interval)
            before = emu.counts()
            cpu, wall = time.process_time(), time.perf_counter()
            await runtime.store.acquire_lease(lease, owner, now, ttl)  # what the supervisor does before a cycle
            report = await rt.run_once(now)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            delta = emu.counts() - before
            if report.enqueued or report.errors:
                raise RuntimeError(f"not idle: queued {len(report.enqueued)}, errors {report.errors}")
            result.cpu_ms.append(cpu * 1000)
            result.wall_ms.append(wall * 1000)
            result.requests.append(sum(delta.values()))
            result.by_kind.update(delta)
        return result
    finally:
        await runtime.aclose()


def record(r: Result) -> dict[str, Any]:
    """``r`` as a report entry: the raw series, and the vocabulary's figures for it."""
    return {"variant": r.variant.label, "interval_s": r.interval, "open_signls": r.open_links,
            "requests_per_idle_poll": min(r.requests),
            "requests_per_idle_poll_mean": finite(statistics.mean(r.requests)),
            "cpu_ms_per_idle_poll": finite(statistics.median(r.cpu_ms)),
            "cycles_per_cpu_s": finite(len(r.cpu_ms) / (sum(r.cpu_ms) / 1000)) if sum(r.cpu_ms) else None,
            "cpu_ms": [round(v, 3) for v in r.cpu_ms], "wall_ms": [round(v, 3) for v in r.wall_ms],
            "requests": r.requests, "by_kind": dict(r.by_kind)}


def render(runs: Sequence[Mapping[str, Any]], *, cycles: int) -> str:
    interval = runs[0]["interval_s"]
    hour = cycles * interval / 3600
    rows = []
    for r in runs:
        rows.append([
            r["variant"], r["open_signls"], min(r["requests"]), f"{statistics.mean(r['requests']):.2f}",
            max(r["requests"]), f"{statistics.median(r['cpu_ms']):.1f}", f"{statistics.mean(r['cpu_ms']):.1f}",
            f"{percentile(r['cpu_ms'], 95):.1f}", f"{statistics.median(r['wall_ms']):.1f}",
            f"{percentile(r['wall_ms'], 95):.1f}", f"{sum(r['cpu_ms']) / 1000 / hour:.2f}",
        ])
    main = table(["configuration", "open Signls", "requests/poll min", "mean", "max", "CPU ms/poll p50", "mean",
                  "p95", "wall ms/poll p50", "p95", "CPU s/hour"], rows)
    kinds = sorted({k for r in runs for k in r["by_kind"]})
    breakdown = table(["requests per poll (mean)", *(r["variant"].split(",")[0] for r in runs)],
                      [[k, *(f"{r['by_kind'].get(k, 0) / cycles:.3f}" for r in runs)] for k in kinds])
    return f"{main}\n\n{breakdown}"


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    configure_logging(level="warning", fmt="console", secrets=())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, variant in enumerate(VARIANTS):
            # A fresh demo world each: the first variant's tags would make the second skip every incident.
            with EmulatorProcess(Path(tmp) / f"emulator-{n}") as emu:
                results.append(await measure(emu, variant, Path(tmp), cycles=args.cycles, interval=args.interval))
    return [record(r) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=240, help="idle cycles to measure (default: 2 simulated hours)")
    parser.add_argument("--interval", type=float, default=30.0, help="poll interval in seconds (the default 30 s)")
    parser.add_argument("--quick", action="store_true", help="60 cycles")
    add_output_arguments(parser)
    args = parser.parse_args()
    saved = saved_report(args)
    if saved is not None:
        publish("idle_poll", saved, doc_section, args)
        return
    host = machine()  # before the run: the load average says what else was running
    if args.quick:
        args.cycles = 60
    started = time.perf_counter()
    runs = asyncio.run(run(args))
    first = runs[0]
    obj = report("idle_poll", host, vars(args), **{k: first[k] for k in (
        "requests_per_idle_poll", "cycles_per_cpu_s")}, headline_variant=first["variant"], runs=runs,
        seconds=round(time.perf_counter() - started))
    publish("idle_poll", obj, doc_section, args, text=render(runs, cycles=args.cycles))


def doc_section(obj: Mapping[str, Any]) -> str:
    p = obj["params"]
    hours = p["cycles"] * p["interval"] / 3600
    return f"""
## Idle poll cost (1 connector)

{heading(obj)}

One connector, the demo world (its matching incidents already raised and tagged: "open Signls"), no new incidents.
{p["cycles"]} idle cycles on a clock advancing {p["interval"]:g} s (the default poll interval) per cycle, i.e.
{hours:g} simulated hours, so the SIGNL4 status poll (every 60 s) and the reconciliation sweep (every 15 min) occur
at their real frequency. One cycle = what the supervisor does: renew the lease, then `run_once`.

- **requests/poll**: HTTPS requests the emulators answered during the cycle (min = a plain cycle; mean = amortised
  over the simulated hours, including the periodic sweeps; max = the heaviest cycle).
- **CPU ms/poll**: `time.process_time()` of the connector process for the cycle (event loop, SQLite, TLS, JSON).
- **wall ms/poll**: elapsed time of the cycle against loopback emulators (Azure adds its own latency per request).
- **CPU s/hour**: total CPU per connector per hour of idling at this interval.

{render(obj['runs'], cycles=p['cycles'])}

Reading: a plain idle cycle costs one Sentinel list read — the incidents modified since the last poll (minus a
five-minute overlap), from which both new pages and the Signls of closed incidents are decided — plus the lease write
and a few SQLite reads; `run_once` itself writes only the cursor of changes, once per 5 min, when nothing changed.
The full filtered scan (a second list read) runs at start and every `full_scan_interval` (15 min). With an API key
and no inbound webhook, one SIGNL4 search for alerts modified since the last search runs every 60 s (half a
request per 30-s poll), and the team's user list is read only when a Signl changed.
Every 15 minutes the reconciliation sweep reads each open Signl's incident (one GET each, at most 100). Access tokens
are cached for their lifetime, so token requests do not show at all.
"""


if __name__ == "__main__":
    main()
