"""Time to deliver a burst of incidents for one connector, next to SIGNL4's rate limit.

SIGNL4 accepts 150 events per 15 s per subscription (commercial plan) and blocks the subscription for 15 s when the
limit is exceeded; the connector budgets 140 per 15 s on a sliding window (``clients/ratelimit.py``), so a burst of
*N* pages cannot finish before (⌈N/140⌉ − 1) × 15 s: 105 s for 1,000 (SIGNL4's own limit allows ~90–100 s).

The emulators run in their own process with the real limits: SIGNL4's commercial plan (150 / 15 s, 600 / min, with
the 15-s block) and ARM's throttling of Sentinel reads and writes. The connector runs under the real supervisor
(1-s poll interval) in this process. The emulator creates the burst at once; the script waits until every incident
has its Signl and reports when the pages landed (emulator clock), the achieved rate, the densest 15-s window, 429
answers seen by the emulator and by the connector, and duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from _emulator import EmulatorProcess, parse_utc
from _report import add_output_arguments, heading, machine, publish, report, saved_report, table
from sentinel_signl4.bootstrap import build_runtime
from sentinel_signl4.clients.ratelimit import DEFAULT_LIMIT, DEFAULT_WINDOW
from sentinel_signl4.domain import external_id_for
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.logs import configure_logging

SIGNL4_LIMIT, SIGNL4_WINDOW = 150, 15.0  # commercial plan, shared/reference/signl4-api.md §1.7
CONNECTOR = "c0000"


def densest_window(moments: list[datetime], window: float) -> int:
    """The most events in any ``window``-second interval (two pointers over the sorted times)."""
    times = sorted(m.timestamp() for m in moments)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def measure(count: int) -> dict[str, Any]:
    configure_logging(level="error", fmt="console", secrets=())
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess(Path(tmp) / "emulator", tenants=1) as emu:
        config = emu.config(store_url=f"sqlite:///{Path(tmp) / 'state.db'}", connectors=1,
                            overrides={"connector": {"poll_interval": "1s"}})
        runtime = await build_runtime(config)
        cycles: list[PollReport] = []
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.supervisor(on_report=cycles.append).run(stop))
        try:
            while True:  # warm up: token, connections, cursors
                if cycles:
                    break
                await asyncio.sleep(0.1)
            cpu, wall = time.process_time(), time.monotonic()
            created = await emu.acall("burst", tenant=0, count=count)
            expected = {external_id_for(CONNECTOR, item["id"]) for item in created}
            burst_at = min(parse_utc(item["created"]) for item in created)
            alerts: list[dict[str, Any]] = []
            deadline = time.monotonic() + max(600.0, count)
            while True:
                alerts = [a for a in await emu.acall("alerts") if a["external_id"] in expected]
                if {a["external_id"] for a in alerts} >= expected:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(alerts)} of {count} paged after {time.monotonic() - wall:.0f} s")
                await asyncio.sleep(1.0)
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=120)
            throttled = runtime.metrics.throttled.labels("signl4")._value.get()
            await runtime.aclose()
        statuses = emu.statuses()
    moments = sorted(parse_utc(a["created"]) for a in alerts)
    per_incident = Counter(a["external_id"] for a in alerts)
    return {
        "count": count, "first": (moments[0] - burst_at).total_seconds(),
        "last": (moments[-1] - burst_at).total_seconds(), "spread": (moments[-1] - moments[0]).total_seconds(),
        "densest": densest_window(moments, SIGNL4_WINDOW), "dup": sum(n - 1 for n in per_incident.values()),
        "emulator_429": statuses[("signl4 event", 429)], "connector_429": int(throttled),
        "sentinel_429": sum(n for (kind, status), n in statuses.items()
                            if status == 429 and kind.startswith("sentinel")),
        "cycles": len(cycles), "cpu": cpu, "wall": wall,
    }


def render(r: Mapping[str, Any]) -> str:
    count, spread = r["count"], r["spread"]
    floor = (math.ceil(count / DEFAULT_LIMIT) - 1) * DEFAULT_WINDOW
    signl4_floor = (math.ceil(count / SIGNL4_LIMIT) - 1) * SIGNL4_WINDOW
    rate = (count - 1) / spread if spread > 0 else float("inf")
    limit_rate = SIGNL4_LIMIT / SIGNL4_WINDOW
    rows = [
        ["incidents in the burst", f"{count:,}", ""],
        ["first page after", f"{r['first']:.1f} s", "burst created → first alert: poll wait + enrichment + send"],
        ["last page after", f"{r['last']:.1f} s", "burst created → every incident paged"],
        ["sending time", f"{spread:.1f} s",
         f"first → last page; floor with our {DEFAULT_LIMIT}/{DEFAULT_WINDOW:g} s budget: {floor:.0f} s "
         f"({100 * floor / spread if spread else 100:.0f}% of it); SIGNL4's {SIGNL4_LIMIT}/{SIGNL4_WINDOW:g} s "
         f"alone: {signl4_floor:.0f} s with perfectly aligned windows, {count / limit_rate:.0f} s at {limit_rate:g}/s"],
        ["average rate while sending", f"{rate:.2f} events/s",
         f"{100 * rate / limit_rate:.0f}% of SIGNL4's {limit_rate:g}/s (a full window's worth goes out at the start "
         f"of each window, so short bursts average more than {DEFAULT_LIMIT / DEFAULT_WINDOW:.2f}/s)"],
        ["densest 15-s window", r["densest"],
         f"at SIGNL4 (arrival times); SIGNL4 allows {SIGNL4_LIMIT}, our sliding budget {DEFAULT_LIMIT}: "
         "requests granted 15 s apart can arrive a little closer"],
        ["429 from SIGNL4", f"{r['emulator_429']} (emulator) / {r['connector_429']} (connector)", "must be 0"],
        ["429 from Sentinel (ARM)", r["sentinel_429"], "enrichment and tag reads/writes, retried after Retry-After"],
        ["duplicates", r["dup"], "incidents paged more than once; must be 0"],
        ["connector CPU", f"{r['cpu']:.1f} s", f"{1000 * r['cpu'] / count:.1f} ms per page, enrichment and tags "
                                               "included"],
    ]
    return table(["burst", "value", "meaning"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="incidents in the burst")
    parser.add_argument("--quick", action="store_true", help="300 incidents")
    add_output_arguments(parser)
    args = parser.parse_args()
    saved = saved_report(args)
    if saved is not None:
        publish("burst", saved, doc_section, args)
        return
    host = machine()  # before the run: the load average says what else was running
    if args.quick:
        args.count = 300
    started = time.perf_counter()
    result = asyncio.run(measure(args.count))
    obj = report("burst", host, vars(args), dup=result["dup"], **{"429s": result["emulator_429"]},
                 first_page_s=round(result["first"], 3), last_page_s=round(result["last"], 3), run=result,
                 seconds=round(time.perf_counter() - started))
    publish("burst", obj, doc_section, args, text=render(result))


def doc_section(obj: Mapping[str, Any]) -> str:
    r = obj["run"]
    return f"""
## Burst of {r['count']:,} incidents for one connector

{heading(obj)}

The emulator process creates {r['count']:,} matching incidents at once in one workspace; one connector (supervisor,
1-s poll, enrichment on, SIGNL4 API key set) pages them. Real limits on both emulators: SIGNL4 commercial plan
(150 events / 15 s, 600 / min, 15-s block when exceeded), ARM throttling of Sentinel reads (250 burst, 25/s) and
writes (200 burst, 10/s). Times are on the emulator's clock, from the moment the burst was created.

{render(r)}

Reading: once the burst is queued, the pages go out exactly as fast as the connector's own budget allows (the
sending time is the floor set by 140 events per sliding 15 s), SIGNL4 never answers 429 and so never blocks the
subscription for 15 s, and no incident is paged twice. The budget costs about 7% against SIGNL4's own limit — the
headroom for other senders on the same subscription and for events SIGNL4 counts that we do not. The first page
waits for the poll that finds the burst to finish enriching it: alerts and entities for every new incident, under
ARM's read throttling, cut off at the enrichment budget (`enrichment.budget`, 10 s; incidents whose evidence did
not arrive are paged with a note). Tags are written after the pages, as each Signl is confirmed.
"""


if __name__ == "__main__":
    main()
