"""Scale: 1,000 and 5,000 connectors at the default 30-s interval in one process, then 1 vs 2 worker processes.

Part 1 (``--sizes``): each size runs ``page_latency.py``'s measurement in a fresh connector process (the real
supervisor, one Sentinel workspace and SIGNL4 subscription per connector, the emulators in a process of their own):
after a warm-up (every connector has completed a cycle), the emulator creates incidents at a steady rate for
``--periods`` poll periods; latency is the SIGNL4 alert's creation minus the incident's, both on the emulator's clock.
Targets: p99 ≤ interval + 1 s and RSS ≤ 150 MiB at 1,000 connectors; the poll period no more than 10 % over the
interval at 5,000.

Part 2 (``--workers``): ``sentinel-signl4 run --workers N`` as a real process tree (parent + N workers; N = 1 is the
single process) on a config file with ``--worker-connectors`` connectors polling every ``--worker-interval`` s, more
than one process can serve: throughput at saturation. A cycle is counted as the Sentinel list read an idle cycle
makes (one each, read on the emulator side, after a settling time that lets the first full scans pass); CPU time
and RSS are those of the whole process tree, from ``/proc``.

Part 3 (``--memory-top K``): the K biggest allocation sites (``tracemalloc``) of one process with the largest size
after every connector completed a cycle, to show what the memory per connector is made of.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from _emulator import EmulatorProcess, parse_utc
from _report import (
    add_output_arguments,
    finite,
    heading,
    machine,
    percentile,
    publish,
    report,
    saved_report,
    stop_child,
    table,
)
from page_latency import figures, stop_text
from sentinel_signl4.domain import external_id_for

HERE = Path(__file__).resolve().parent
LATENCY = HERE / "page_latency.py"


# -- part 1: page latency, poll period and memory at scale, one process ----------------------------------------------

def one_size(n: int, *, interval: float, rate: float, duration: float, settle: float) -> dict[str, Any] | None:
    proc = subprocess.run([sys.executable, str(LATENCY), "--size", str(n), "--interval", str(interval),
                           "--rate", str(rate), "--duration", str(duration), "--settle", str(settle)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:  # reported, not fatal: the other parts still run
        print(f"{n} connectors failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
        return None
    return figures(json.loads(proc.stdout.strip().splitlines()[-1]))


# -- part 2: 1 vs N worker processes at saturation ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _set(block: str, key: str, value: str) -> str:
    """``block`` with the first ``key = …`` line set to the string ``value``."""
    return re.sub(rf"(?m)^{re.escape(key)} = .*$", lambda _m: f"{key} = {json.dumps(value)}", block, count=1)


def config_file(emu: EmulatorProcess, *, store_url: str, connectors: int, interval: float, port: int) -> str:
    """A config file with one connector per extra tenant of ``emu`` (c0000…), as ``EmulatorProcess.config`` builds
    in memory, for a ``run`` process."""
    text = str(emu.call("config", store_url=store_url, api_key=True, extra_tables="", overrides={
        "connector": {"poll_interval": f"{interval:g}s"}, "logging": {"level": "warning"}}))
    head, block = text.split("[[connectors]]", 1)
    head += f'\n[server]\nhost = "127.0.0.1"\nport = {port}\n\n'
    blocks = []
    for i, tenant in enumerate(emu.tenants[:connectors]):
        one = block
        for key, value in (("name", f"c{i:04d}"), ("display_name", f"Bench {i}"),
                           ("workspace_name", tenant["workspace_name"]), ("resource_group", "rg-bench"),
                           ("workspace_id", tenant["workspace_id"]),
                           ("webhook_url", f"{emu.base_url}/webhook/{tenant['team_secret']}"),
                           ("api_key", tenant["api_key"]), ("subscription", f"bench-{i:04d}")):
            one = _set(one, key, value)
        blocks.append("[[connectors]]" + one)
    return head + "\n".join(blocks)


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_usage(root: int) -> tuple[float, int]:
    """CPU seconds (user + system) and resident bytes of ``root``'s process tree now."""
    tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    cpu, rss = 0.0, 0
    for pid in _tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


def workers_throughput(workers: int, *, connectors: int, interval: float, settle: float,
                       window: float, rate: float = 0.0) -> dict[str, Any]:
    """``rate`` > 0: the emulator also creates that many incidents per second during the window, and the page
    latency of those is measured as in part 1."""
    with tempfile.TemporaryDirectory() as tmp, \
            EmulatorProcess(Path(tmp) / "emulator", tenants=connectors, open_arm_limits=True) as emu:
        port = free_port()
        path = Path(tmp) / "config.toml"
        path.write_text(config_file(emu, store_url=f"sqlite:///{Path(tmp) / 'state.db'}", connectors=connectors,
                                    interval=interval, port=port), encoding="utf-8")
        log = Path(tmp) / "run.log"
        with log.open("w") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "sentinel_signl4", "run", "--config", str(path),
                                     "--workers", str(workers)], stdout=sink, stderr=subprocess.STDOUT)
        try:
            started = time.monotonic()
            while True:
                if proc.poll() is not None:
                    sys.exit(f"run --workers {workers} exited: {log.read_text()[-3000:]}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() - started > 900:
                    sys.exit(f"run --workers {workers}: not ready after 900 s: {log.read_text()[-3000:]}")
                time.sleep(1.0)
            ready = time.monotonic() - started
            time.sleep(settle)
            lists = emu.counts()["sentinel list incidents"]
            cpu, wall = tree_usage(proc.pid)[0], time.monotonic()
            created = emu.call("stream", rate=rate, duration=window, tenants=connectors) if rate else []
            time.sleep(max(0.0, window - (time.monotonic() - wall)))
            cycles = emu.counts()["sentinel list incidents"] - lists
            cpu_now, rss = tree_usage(proc.pid)
            cpu, wall = cpu_now - cpu, time.monotonic() - wall
            latencies, dup, unpaged = paged_after(emu, created, within=max(120.0, 4 * interval), proc=proc)
            statuses = emu.statuses()
        finally:
            code = stop_child(proc, timeout=300)
    return {"workers": workers, "connectors": connectors, "interval_s": interval,
            "cycles_per_s": finite(cycles / wall), "cycles_per_cpu_s": finite(cycles / cpu) if cpu else None,
            "cpu_cores": finite(cpu / wall), "rss_mib": finite(rss / 2**20),
            "poll_period_s": finite(connectors * wall / cycles) if cycles else None,
            "429s": sum(count for (_, status), count in statuses.items() if status == 429),
            "ready_after_s": finite(ready), "window_s": finite(wall), "exit_code": code,
            "incidents": len(created), "unpaged": unpaged, "dup": dup,
            **{f"p{q}_s": finite(percentile(latencies, q)) if latencies else None for q in (50, 95, 99)}}


def paged_after(emu: EmulatorProcess, created: list[dict[str, Any]], *, within: float,
                proc: subprocess.Popen[bytes]) -> tuple[list[float], int, int]:
    """For the incidents in ``created``: the latency (s) of each one paged within ``within`` seconds, how many were
    paged more than once, and how many were not paged."""
    expected = {external_id_for(f"c{item['tenant']:04d}", item["id"]): parse_utc(item["created"]) for item in created}
    deadline = time.monotonic() + within
    alerts: dict[str, list[datetime]] = {}
    while expected:
        alerts = {}
        for alert in emu.call("alerts"):
            if alert["external_id"] in expected:
                alerts.setdefault(alert["external_id"], []).append(parse_utc(alert["created"]))
        if len(alerts) == len(expected) or time.monotonic() > deadline or proc.poll() is not None:
            break
        time.sleep(1.0)
    latencies = [(min(times) - expected[ext]).total_seconds() for ext, times in alerts.items()]
    return latencies, sum(len(times) - 1 for times in alerts.values()), len(expected) - len(alerts)


# -- part 3: what the memory is made of -----------------------------------------------------------------------------

async def memory_top(n: int, top: int) -> dict[str, Any]:
    from sentinel_signl4.bootstrap import build_runtime
    from sentinel_signl4.logs import configure_logging

    configure_logging(level="error", fmt="console", secrets=())
    with tempfile.TemporaryDirectory() as tmp, \
            EmulatorProcess(Path(tmp) / "emulator", tenants=n, open_arm_limits=True) as emu:
        config = emu.config(store_url=f"sqlite:///{Path(tmp) / 'state.db'}", connectors=n)
        tracemalloc.start(1)
        runtime = await build_runtime(config)
        built = tracemalloc.take_snapshot()
        try:
            await runtime.supervisor().run_each_once()
            cycled = tracemalloc.take_snapshot()
        finally:
            await runtime.aclose()
        tracemalloc.stop()

    def biggest(snapshot: tracemalloc.Snapshot) -> list[dict[str, Any]]:
        stats = snapshot.statistics("filename")
        return [{"file": _short(str(s.traceback[0].filename)), "kib_per_connector": round(s.size / n / 1024, 1),
                 "blocks": s.count} for s in stats[:top]]

    total_built = sum(s.size for s in built.statistics("filename"))
    total_cycled = sum(s.size for s in cycled.statistics("filename"))
    return {"connectors": n, "traced_kib_per_connector_built": round(total_built / n / 1024, 1),
            "traced_kib_per_connector_after_cycle": round(total_cycled / n / 1024, 1),
            "top_after_cycle": biggest(cycled)}


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


# -- the report -----------------------------------------------------------------------------------------------------

def measure(args: argparse.Namespace, host: str) -> dict[str, Any]:
    started = time.perf_counter()
    sizes, failed = [], []
    for n in (int(s) for s in args.sizes.split(",") if s):
        figures_n = one_size(n, interval=args.interval, rate=args.rate, duration=args.periods * args.interval,
                             settle=args.interval if args.warm_settle is None else args.warm_settle)
        if figures_n is None:
            failed.append(n)
        else:
            sizes.append(figures_n)
        print(f"{n} connectors done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    latency = []
    for w in (int(s) for s in args.latency_workers.split(",") if s):
        n = max((s["connectors"] for s in sizes), default=1000) if not args.latency_connectors \
            else args.latency_connectors
        latency.append(workers_throughput(w, connectors=n, interval=args.interval, settle=args.interval,
                                          window=args.periods * args.interval, rate=args.rate))
        print(f"{w} worker(s) at {n} connectors done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    pools = []
    for w in (int(s) for s in args.workers.split(",") if s):
        pools.append(workers_throughput(w, connectors=args.worker_connectors, interval=args.worker_interval,
                                        settle=args.settle, window=args.window, rate=args.worker_rate))
        print(f"{w} worker(s) done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    memory = None
    if args.memory_top:
        biggest_size = max((s["connectors"] for s in sizes), default=1000)
        memory = asyncio.run(memory_top(biggest_size, args.memory_top))
    headline = next((s for s in sizes if s["connectors"] == 1000), sizes[0] if sizes else {})
    one = next((p for p in pools if p["workers"] == 1), None)
    ratio = {f"{p['workers']}_over_1": finite(p["cycles_per_s"] / one["cycles_per_s"])
             for p in pools if one and one["cycles_per_s"] and p["workers"] != 1}
    return report("scale", host, vars(args), **{k: headline.get(k) for k in (
        "p50_s", "p95_s", "p99_s", "poll_period_s", "cycles_per_cpu_s", "rss_mib", "dup", "errors", "429s")},
        sizes=sizes, failed_sizes=failed, workers=pools, throughput_ratio=ratio, workers_latency=latency,
        memory=memory,
        seconds=round(time.perf_counter() - started))


def render(obj: Mapping[str, Any]) -> str:
    parts = []
    if obj["sizes"]:
        parts.append(table(
            ["connectors", "interval s", "incidents", "p50 s", "p95 s", "p99 s", "max s", "poll period s",
             "stretch", "cycles/s", "CPU cores", "cycles/CPU-s", "RSS MiB", "unpaged", "dup", "errors", "429s"],
            [[s["connectors"], f"{s['interval_s']:g}", s["incidents"], _f(s["p50_s"]), _f(s["p95_s"]),
              _f(s["p99_s"]), _f(s["max_s"]), _f(s["poll_period_s"]), _pct(s["period_stretch"]),
              _f(s["cycles_per_s"], 1), _f(s["cpu_cores"]), _f(s["cycles_per_cpu_s"], 1), _f(s["rss_mib"], 0),
              s.get("unpaged", 0), s["dup"], s["errors"], s["429s"]] for s in obj["sizes"]]))
    if obj["workers"]:
        parts.append(table(
            ["processes", "connectors", "interval s", "cycles/s", "ratio to 1", "CPU cores", "cycles/CPU-s",
             "poll period s", "incidents", "p50 s", "p95 s", "p99 s", "unpaged", "dup", "RSS MiB (all)", "429s"],
            [[_processes(p["workers"]), p["connectors"], f"{p['interval_s']:g}", _f(p["cycles_per_s"], 1),
              _f(obj["throughput_ratio"].get(f"{p['workers']}_over_1"), 2) if p["workers"] != 1 else "1",
              _f(p["cpu_cores"]), _f(p["cycles_per_cpu_s"], 1), _f(p["poll_period_s"]), p.get("incidents", 0),
              _f(p.get("p50_s")), _f(p.get("p95_s")), _f(p.get("p99_s")), p.get("unpaged", 0), p.get("dup", 0),
              _f(p["rss_mib"], 0), p["429s"]] for p in obj["workers"]]))
    if obj.get("workers_latency"):
        parts.append(table(
            ["processes", "connectors", "interval s", "incidents", "p50 s", "p95 s", "p99 s", "unpaged", "dup",
             "poll period s", "cycles/s", "CPU cores", "RSS MiB (all)", "429s"],
            [[_processes(p["workers"]), p["connectors"], f"{p['interval_s']:g}", p["incidents"], _f(p["p50_s"]),
              _f(p["p95_s"]), _f(p["p99_s"]), p["unpaged"], p["dup"], _f(p["poll_period_s"]),
              _f(p["cycles_per_s"], 1), _f(p["cpu_cores"]), _f(p["rss_mib"], 0), p["429s"]]
             for p in obj["workers_latency"]]))
    memory = obj.get("memory")
    if memory:
        parts.append(table(["allocated in (after one cycle each)", "KiB per connector", "blocks"],
                           [[m["file"], m["kib_per_connector"], m["blocks"]] for m in memory["top_after_cycle"]]))
    return "\n\n".join(parts)


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.0f} %"


def _processes(workers: int) -> str:
    return "1 (no workers)" if workers == 1 else f"1 + {workers} workers"


def section(obj: Mapping[str, Any]) -> str:
    p = obj["params"]
    notes = "\n".join(
        f"- {s['connectors']:,} connectors: runtime built in {s['build_s']:.1f} s; warm-up (one cycle each) "
        f"{s['warmup_s']:.1f} s; measured over {s['window_s']:.0f} s; graceful stop {stop_text(s)}; RSS after "
        f"warm-up {s['rss_warm_mib']:.0f} MiB, peak {s['peak_rss_mib']:.0f} MiB; least-served connector cycled "
        f"{s['least_cycles']} time(s)." for s in obj["sizes"])
    memory = obj.get("memory")
    memory_note = "" if not memory else (
        f"\n\nMemory (`--memory-top`, tracemalloc, one process with {memory['connectors']:,} connectors): "
        f"{memory['traced_kib_per_connector_built']} KiB per connector traced once the runtime is built, "
        f"{memory['traced_kib_per_connector_after_cycle']} KiB after one cycle each; the biggest allocation sites "
        "are in the last table.")
    return f"""
## Scale: 1,000 and 5,000 connectors, and worker processes (`bench/scale.py`)

{heading(obj)}

Part 1, one connector process per size, the real supervisor, poll interval {p['interval']:g} s (the default); after
a warm-up, the emulator process creates {p['rate']:g} incidents/s for {p['periods']:g} poll periods
({p['periods'] * p['interval']:g} s), round-robin over the connectors' workspaces (one workspace and SIGNL4
subscription per connector). **p50/p95/p99/max s**: incident created → alert created in SIGNL4, on the emulator's
clock (target at 1,000 connectors: p99 ≤ interval + 1 s). **poll period s**: achieved time between two cycles of one
connector over the measurement; **stretch**: how far above the interval (target at 5,000: ≤ +10 %). **RSS MiB**:
the connector process at the end (target at 1,000: ≤ 150).

Part 2, `sentinel-signl4 run --workers N` as a process tree on a config file of {p['worker_connectors']:,}
connectors polling every {p['worker_interval']:g} s (more than a process can serve: throughput at saturation),
SQLite store. Cycles are counted as the one Sentinel list read an idle cycle makes, on the emulator's side, over
{p['window']:g} s after {p['settle']:g} s of settling past the first full scans; CPU and RSS are the whole tree's
(parent and workers). The emulator process shares the machine's two cores. Part 2b: the same process tree with part
1's connectors, interval, incident rate and periods, page latency measured as in part 1 (the third table).

{render(obj)}

{notes}{memory_note}

{textwrap.fill(reading(obj), width=118)}
"""


def reading(obj: Mapping[str, Any]) -> str:
    said = []
    by = {s["connectors"]: s for s in obj["sizes"]}
    if 1000 in by:
        s = by[1000]
        said.append(f"At 1,000 connectors and {s['interval_s']:g} s the p99 page latency was {s['p99_s']:.1f} s "
                    f"(target {s['interval_s'] + 1:g} s: {'met' if s['p99_s'] <= s['interval_s'] + 1 else 'missed'}) "
                    f"and the process held {s['rss_mib']:.0f} MiB (target 150: "
                    f"{'met' if s['rss_mib'] <= 150 else 'missed'}).")
    if 5000 in by:
        s = by[5000]
        said.append(f"At 5,000 connectors the poll period was {s['poll_period_s']:.1f} s, "
                    f"{100 * s['period_stretch']:+.0f} % over the interval (target +10 %: "
                    f"{'met' if s['period_stretch'] <= 0.10 else 'missed'}); one process completed "
                    f"{s['cycles_per_s']:.0f} cycles per second at {s['cpu_cores']:.2f} cores.")
    for p in obj.get("workers_latency") or []:
        if p["p99_s"] is not None:
            said.append(f"With {_processes(p['workers'])} and {p['connectors']:,} connectors at {p['interval_s']:g} s "
                        f"the p99 page latency was {p['p99_s']:.1f} s and the poll period "
                        f"{p['poll_period_s'] or 0:.1f} s, at {p['rss_mib']:.0f} MiB for the whole tree.")
    if obj.get("failed_sizes"):
        said.append(f"Sizes that did not complete: {', '.join(map(str, obj['failed_sizes']))} connectors.")
    ratio = obj["throughput_ratio"].get("2_over_1")
    if ratio is not None:
        said.append(f"Two worker processes completed {ratio:.2f}× the cycles per second of one process.")
    return " ".join(said)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000", help="connector counts of part 1 ('' to skip)")
    parser.add_argument("--interval", type=float, default=30.0, help="part 1 poll interval (s)")
    parser.add_argument("--periods", type=float, default=3.0, help="part 1: poll periods of new incidents")
    parser.add_argument("--warm-settle", type=float, default=None,
                        help="part 1: seconds after every connector's first cycle before measuring (default: one "
                             "interval, so cycles made late by a long warm-up are not counted in the window)")
    parser.add_argument("--rate", type=float, default=2.0, help="part 1: new incidents per second, all connectors")
    parser.add_argument("--workers", default="1,2", help="part 2: worker counts ('' to skip)")
    parser.add_argument("--worker-connectors", type=int, default=400)
    parser.add_argument("--worker-interval", type=float, default=1.0)
    parser.add_argument("--settle", type=float, default=30.0, help="part 2: seconds after ready before measuring")
    parser.add_argument("--window", type=float, default=60.0, help="part 2: seconds measured")
    parser.add_argument("--worker-rate", type=float, default=0.0,
                        help="part 2: new incidents per second during the window (0: none; latency when > 0)")
    parser.add_argument("--latency-workers", default="2",
                        help="part 2b: worker counts run at part 1's interval, rate and periods ('' to skip)")
    parser.add_argument("--latency-connectors", type=int, default=1000, help="part 2b: connectors (0: largest size)")
    parser.add_argument("--memory-top", type=int, default=0, help="part 3: allocation sites to list (0: skip)")
    parser.add_argument("--quick", action="store_true", help="100 connectors at 5 s; 1 vs 2 workers on 100")
    add_output_arguments(parser)
    args = parser.parse_args()
    saved = saved_report(args)
    if saved is not None:
        publish("scale", saved, section, args)
        return
    if args.quick:
        args.sizes, args.interval, args.periods = "100", 5.0, 2.0
        args.worker_connectors, args.settle, args.window = 100, 5.0, 15.0
        args.latency_connectors = 100
    host = machine()  # before the run: the load average says what else was running
    obj = measure(args, host)
    publish("scale", obj, section, args, text=render(obj))


if __name__ == "__main__":
    main()
