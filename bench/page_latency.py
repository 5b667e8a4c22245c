"""Page latency with 10, 100 and 1,000 connectors in one process: incident created → alert exists in SIGNL4.

Each size runs in a fresh connector process (this script re-invoked with ``--size``), so memory figures are that
size's alone; the emulators run in a process of their own with one Sentinel workspace and one SIGNL4 subscription
per connector (an MSSP's many customers; the emulator's ARM throttling is lifted because here they share one app).
The connectors run under the real supervisor (leases, one task per connector) with a short poll interval. After a
warm-up (every connector has completed a cycle), the emulator process creates incidents at a steady rate,
round-robin over the connectors' workspaces; latency is the SIGNL4 alert's creation time minus the incident's,
both stamped by the emulator process's clock, so no clock skew enters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from _emulator import EmulatorProcess, parse_utc
from _report import (
    add_output_arguments,
    finite,
    heading,
    machine,
    percentile,
    publish,
    report,
    rss_bytes,
    saved_report,
    table,
)
from sentinel_signl4.bootstrap import build_runtime
from sentinel_signl4.domain import external_id_for
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.logs import configure_logging

DEFAULT_SIZES = (10, 100, 1000)


async def wait_for(what: str, check: Any, *, within: float, every: float = 0.25) -> float:
    """Poll ``check()`` (sync or async) until true; return seconds waited; raise with ``what`` after ``within``."""
    start = time.monotonic()
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise TimeoutError(f"gave up after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)


async def one_size(n: int, *, interval: float, rate: float, duration: float,
                   settle: float = 0.0) -> dict[str, Any]:
    configure_logging(level="error", fmt="console", secrets=())
    rss_start = rss_bytes()
    with tempfile.TemporaryDirectory() as tmp, \
            EmulatorProcess(Path(tmp) / "emulator", tenants=n, open_arm_limits=True) as emu:
        config = emu.config(store_url=f"sqlite:///{Path(tmp) / 'state.db'}", connectors=n,
                            overrides={"connector": {"poll_interval": f"{interval:g}s"}})
        built = time.monotonic()
        runtime = await build_runtime(config)
        build_seconds = time.monotonic() - built
        cycles: Counter[str] = Counter()
        errors: Counter[str] = Counter()

        def on_report(report: PollReport) -> None:
            cycles[report.connector] += 1
            for error in report.errors:
                errors[error.split(":", 1)[0]] += 1

        stop = asyncio.Event()
        supervisor = runtime.supervisor(on_report=on_report)
        task = asyncio.create_task(supervisor.run(stop))
        try:
            # One full cycle each: the first one reads tokens, opens connections and sets the cursors.
            warmup = await wait_for("every connector to finish a cycle", lambda: len(cycles) == n,
                                    within=max(300.0, n / 5))
            # A process that needed longer than an interval for the first cycles still has late cycles to catch
            # up on: counted in the window, they would make the period look shorter than it is.
            await asyncio.sleep(settle)
            rss_warm = rss_bytes()
            per_connector_before, errors_before = Counter(cycles), sum(errors.values())
            cpu, wall = time.process_time(), time.monotonic()
            emu_cpu = (await emu.acall("usage"))["cpu_seconds"]
            created = await emu.acall("stream", rate=rate, duration=duration, tenants=n)
            expected = {external_id_for(f"c{item['tenant']:04d}", item["id"]): parse_utc(item["created"])
                        for item in created}
            raised: dict[str, Any] = {}

            async def all_raised() -> bool:
                raised.clear()
                for alert in await emu.acall("alerts"):
                    if alert["external_id"] in expected:
                        raised.setdefault(alert["external_id"], []).append(parse_utc(alert["created"]))
                return all(ext in raised for ext in expected)

            # Those not paged by then are reported as "unpaged": a size the process cannot serve still gets figures.
            with contextlib.suppress(TimeoutError):
                await wait_for("every incident to be paged", all_raised, within=max(360.0, 4 * duration), every=1.0)
            window = time.monotonic() - wall
            cpu = time.process_time() - cpu
            emu_cpu_s = (await emu.acall("usage"))["cpu_seconds"] - emu_cpu
            during = Counter(cycles)
            during.subtract(per_connector_before)
            window_cycles = sum(during.values())
            # The connector that cycled least during the measurement: 0 would mean one was starved.
            least_cycles = min(during[f"c{i:04d}"] for i in range(n))
            rss_end = rss_bytes()
        finally:
            stop.set()
            stopped = time.monotonic()
            # A saturated process can take long to finish every cycle under way: the figures are kept either way.
            stop_limit = max(120.0, n / 10)
            try:
                await asyncio.wait_for(task, timeout=stop_limit)
                stop_seconds: float | None = time.monotonic() - stopped
            except TimeoutError:
                stop_seconds = None
            await runtime.aclose()
        statuses = emu.statuses()
    latencies = [(min(raised[ext]) - created_at).total_seconds() for ext, created_at in expected.items()
                 if ext in raised]
    duplicates = sum(len(v) - 1 for v in raised.values())
    return {
        "connectors": n, "interval": interval, "incidents": len(expected), "latencies": latencies,
        "unpaged": len(expected) - len(latencies),
        "duplicates": duplicates, "window": window, "cpu": cpu, "emulator_cpu": emu_cpu_s,
        "cycles": window_cycles, "least_cycles": least_cycles, "errors": sum(errors.values()) - errors_before,
        "error_kinds": dict(errors), "build_seconds": build_seconds, "warmup": warmup, "settle": settle,
        "stop_seconds": stop_seconds,
        "stop_limit": stop_limit,
        "rss_start": rss_start, "rss_warm": rss_warm, "rss_end": rss_end,
        "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "status_429": sum(count for (_, status), count in statuses.items() if status == 429),
    }


def figures(raw: dict[str, Any]) -> dict[str, Any]:
    """One size's report entry from ``one_size``'s raw result (the latencies reduced to percentiles)."""
    lat, n = raw["latencies"], raw["connectors"]
    period = n * raw["window"] / raw["cycles"] if raw["cycles"] else float("inf")
    return {
        "connectors": n, "interval_s": raw["interval"], "incidents": raw["incidents"],
        "unpaged": raw.get("unpaged", 0), "p50_s": finite(percentile(lat, 50)), "p95_s": finite(percentile(lat, 95)),
        "p99_s": finite(percentile(lat, 99)), "max_s": finite(max(lat)) if lat else None,
        "poll_period_s": finite(period), "period_stretch": finite(period / raw["interval"] - 1),
        "cycles_per_cpu_s": finite(raw["cycles"] / raw["cpu"]) if raw["cpu"] else None,
        "cycles_per_s": finite(raw["cycles"] / raw["window"]), "cpu_cores": finite(raw["cpu"] / raw["window"]),
        "cpu_ms_per_cycle": finite(1000 * raw["cpu"] / max(1, raw["cycles"])),
        "emulator_cores": finite(raw["emulator_cpu"] / raw["window"]),
        "rss_mib": finite(raw["rss_end"] / 2**20), "rss_warm_mib": finite(raw["rss_warm"] / 2**20),
        "peak_rss_mib": finite(raw["max_rss"] / 2**20),
        "dup": raw["duplicates"], "errors": raw["errors"], "error_kinds": raw["error_kinds"],
        "429s": raw["status_429"], "window_s": finite(raw["window"]), "least_cycles": raw["least_cycles"],
        "build_s": finite(raw["build_seconds"]), "warmup_s": finite(raw["warmup"]), "settle_s": raw.get("settle", 0.0),
        "stop_s": finite(raw["stop_seconds"]) if raw["stop_seconds"] is not None else None,
        "stop_limit_s": raw.get("stop_limit"),
    }


def render(obj: Mapping[str, Any]) -> str:
    rows = [[s["connectors"], s["incidents"], f"{s['p50_s']:.2f}", f"{s['p95_s']:.2f}", f"{s['p99_s']:.2f}",
             f"{s['max_s']:.2f}", f"{s['poll_period_s']:.2f}", f"{s['cpu_cores']:.2f}",
             f"{s['cpu_ms_per_cycle']:.1f}", f"{s['emulator_cores']:.2f}", f"{s['rss_mib']:.0f}", s["dup"],
             s["errors"], s["429s"]] for s in obj["sizes"]]
    return table(["connectors", "incidents", "p50 s", "p95 s", "p99 s", "max s", "poll period s", "CPU cores",
                  "CPU ms/cycle", "emulator cores", "RSS MiB", "dup", "errors", "429s"], rows)


def measure(args: argparse.Namespace, host: str) -> dict[str, Any]:
    started = time.perf_counter()
    sizes = []
    for size in (int(s) for s in args.sizes.split(",")):
        proc = subprocess.run([sys.executable, __file__, "--size", str(size), "--interval", str(args.interval),
                               "--rate", str(args.rate), "--duration", str(args.duration),
                               "--settle", str(args.settle)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"{size} connectors failed:\n{proc.stderr[-3000:]}")
        sizes.append(figures(json.loads(proc.stdout.strip().splitlines()[-1])))
        print(f"{size} connectors done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    biggest = sizes[-1]
    return report("page_latency", host, vars(args), **{k: biggest[k] for k in (
        "p50_s", "p95_s", "p99_s", "poll_period_s", "cycles_per_cpu_s", "rss_mib", "dup", "errors", "429s")},
        sizes=sizes, seconds=round(time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="connector counts, e.g. 10,100")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval of every connector (s)")
    parser.add_argument("--rate", type=float, default=4.0, help="new incidents per second, over all connectors")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of new incidents per size")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds to wait after every connector's first cycle before measuring")
    parser.add_argument("--quick", action="store_true", help="10 and 100 connectors, 10 s each")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)  # internal: run one size, print JSON
    add_output_arguments(parser)
    args = parser.parse_args()
    if args.size is not None:
        result = asyncio.run(one_size(args.size, interval=args.interval, rate=args.rate, duration=args.duration,
                                      settle=args.settle))
        print(json.dumps(result))
        return
    saved = saved_report(args)
    if saved is not None:
        publish("page_latency", saved, doc_section, args)
        return
    host = machine()  # before the run: the load average says what else was running
    if args.quick:
        args.sizes, args.duration = "10,100", 10.0
    obj = measure(args, host)
    publish("page_latency", obj, doc_section, args, text=render(obj))


def stop_text(size: Mapping[str, Any]) -> str:
    if size["stop_s"] is None:
        return f"not done within {size.get('stop_limit_s') or 120:.0f} s (the rest was cancelled)"
    return f"{size['stop_s']:.1f} s"


def reading(obj: Mapping[str, Any]) -> str:
    """What the table says, in numbers taken from it."""
    sizes, interval = obj["sizes"], obj["params"]["interval"]
    biggest = sizes[-1]
    best = max(sizes, key=lambda s: s["cycles_per_s"])
    capacity, at_scale = best["cycles_per_s"], biggest["cycles_per_s"]
    period = biggest["poll_period_s"]
    least = biggest["least_cycles"]
    p50 = biggest["p50_s"]
    paragraphs = [
        f"One connector process completed at most {capacity:.0f} connector cycles per second (with "
        f"{best['connectors']:,} connectors), the event loop (one thread) using about one CPU core. Below that "
        f"rate connectors keep their {interval:g}-s interval; "
        f"above it the poll period stretches ({period:.0f} s with {biggest['connectors']:,} connectors) and the "
        f"median latency grows to {p50 / period:.1f} poll periods: the wait for the next poll, then a cycle whose "
        "every await shares the loop with all the other cycles. Every connector still cycled during the "
        f"measurement (the least-served one {least} time{'' if least == 1 else 's'}), nothing was paged "
        f"{'twice' if not biggest['dup'] else 'twice except ' + str(biggest['dup'])} and "
        f"{'nothing was throttled' if not biggest['429s'] else str(biggest['429s']) + ' requests were throttled'}.",
        f"With {biggest['connectors']:,} connectors the process completed {at_scale:.0f} cycles per second (the CPU "
        "per cycle grows with the number of concurrent cycles), so one process serves roughly "
        f"{round(at_scale * 30, -2):,.0f} connectors at the default 30-s poll interval; beyond that, run "
        "`run --workers N` or replicas sharing PostgreSQL (each connector runs on exactly one process, by lease).",
    ]
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]
        slope = (b["rss_warm_mib"] - a["rss_warm_mib"]) / (b["connectors"] - a["connectors"]) * 1024
        paragraphs.append(f"Memory: about {slope:.0f} KiB per additional connector (RSS after warm-up, "
                          f"{a['connectors']:,} → {b['connectors']:,} connectors); the first ~115 MiB are the "
                          "interpreter, the libraries and the shared clients.")
    return "\n\n".join(textwrap.fill(text, width=118) for text in paragraphs)


def doc_section(obj: Mapping[str, Any]) -> str:
    p = obj["params"]
    notes = "\n".join(
        f"- {s['connectors']} connectors: runtime built in {s['build_s']:.1f} s; warm-up (one cycle each) "
        f"{s['warmup_s']:.1f} s; graceful stop {stop_text(s)}; peak RSS {s['peak_rss_mib']:.0f} MiB; "
        f"error kinds {s['error_kinds'] or 'none'}."
        for s in obj["sizes"])
    return f"""
## Page latency with many connectors (one process)

{heading(obj)}

Each size in a fresh connector process under the real supervisor, poll interval {p['interval']:g} s; after a warm-up,
the emulator process creates {p['rate']:g} incidents/s for {p['duration']:g} s, round-robin over the connectors'
workspaces (each connector has its own workspace and SIGNL4 subscription). Enrichment is on (alerts, entities and one
Log Analytics query per poll with new incidents), as by default.

- **p50/p95/p99/max s**: incident creation → alert created in SIGNL4, both on the emulator's clock. With a poll
  interval *i* the floor is about *i*/2 on average (the wait for the next poll) plus one cycle's work.
- **poll period s**: achieved time between two cycles of one connector during the measurement (interval + cycle
  time when the machine keeps up; more when it does not).
- **CPU cores**: connector-process CPU time ÷ wall time (2.0 = both cores busy). **CPU ms/cycle**: per connector cycle.
- **emulator cores**: the same for the emulator process, which shares the machine's two cores.
- **RSS MiB**: connector-process resident memory at the end of the measurement.
- **dup**: incidents paged more than once (must be 0); **errors**: cycle steps that failed (timeouts, throttling)
  during the measurement; **429s**: throttled answers from the emulators.

{render(obj)}

{notes}

{reading(obj)}

Repeated runs on a shared two-core machine vary by ±20 % or more (the load average above says how busy it was):
read the orders of magnitude, not the decimals.
"""


if __name__ == "__main__":
    main()
