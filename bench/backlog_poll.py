"""Idle polls over a backlog: requests, CPU and store writes per idle poll with 500 New incidents lying around,
before and after the incremental poll, side by side in one run.

A SOC often leaves a few hundred New incidents open. Each was paged once (linked and tagged) and nothing about it
changes; the question is what an idle poll costs then. The "before" code is a ``git worktree`` of the commit given
with ``--before`` (default: where this branch left ``main``), created in a temporary directory and removed at the end;
the "after" code is this checkout. Each side runs as a child process with its own ``src`` first on ``sys.path``,
against a fresh emulator process holding the same backlog, and is driven cycle by cycle over a pipe, so the parent
counts the requests the emulator answered for each cycle on the server side.

Per side: the initial sync pages and tags the whole backlog; then ``--cycles`` idle cycles on a clock advancing by
the poll interval, each as the supervisor runs it (lease renewal, then ``run_once``). ``requests_per_idle_poll`` and
``cpu_ms_per_idle_poll`` are the medians (a plain idle poll); the ``_mean`` figures include the periodic work (the
full scan every 15 min after, the reconciliation sweep). ``store_write_cycles`` counts cycles in which ``run_once``
committed anything to the SQLite store (``PRAGMA data_version`` seen from another connection; the lease renewal is
left out, it is the supervisor's). SIGNL4 changes come back by webhook (no SIGNL4 polling), so every request counted
is the connector's Sentinel traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _emulator import EmulatorProcess
from _report import add_output_arguments, heading, machine, percentile, publish, report, saved_report, table

CONNECTOR = "contoso"
REPO = Path(__file__).resolve().parents[1]
WEBHOOK = {"webhook_token": "bench-webhook-token-0123456789"}
LIST = "sentinel list incidents"


# -- the child: one connector of one code version, a cycle per command ----------------------------------------------

async def _child(config_text: str, code: str, db_path: Path, interval: float) -> None:
    from sentinel_signl4.bootstrap import build_runtime
    from sentinel_signl4.config import parse_config
    from sentinel_signl4.domain import ActionState
    from sentinel_signl4.logs import configure_logging

    configure_logging(level="warning", fmt="console", secrets=())
    runtime = await build_runtime(parse_config(config_text, source="bench.toml"))
    rt = runtime.connectors[CONNECTOR].runtime
    now = datetime.now(UTC)
    lease, owner, ttl = f"connector:{CONNECTOR}", "bench", max(60.0, 3 * interval)
    observer = sqlite3.connect(db_path)
    reply: dict[str, Any] = {"code": code}
    try:
        for line in sys.stdin:
            op = json.loads(line)["op"]
            if op == "sync":  # page and tag the backlog; done when a cycle finds nothing to do
                cycles = 0
                while cycles < 400:
                    cycles += 1
                    report = await rt.run_once(now)
                    counts = await runtime.store.count_actions(CONNECTOR)
                    now += timedelta(seconds=interval)
                    if (counts[ActionState.PENDING] + counts[ActionState.IN_FLIGHT] == 0 and not report.enqueued
                            and not any(report.done.values())):
                        break
                reply |= {"sync_cycles": cycles, "open_links": len(await runtime.store.open_links(CONNECTOR, 10_000))}
            elif op == "cycle":
                now += timedelta(seconds=interval)
                cpu = time.process_time()
                await runtime.store.acquire_lease(lease, owner, now, ttl)
                version = observer.execute("PRAGMA data_version").fetchone()[0]
                report = await rt.run_once(now)
                wrote = observer.execute("PRAGMA data_version").fetchone()[0] != version
                reply = {"cpu_ms": (time.process_time() - cpu) * 1000, "wrote": wrote,
                         "enqueued": len(report.enqueued), "errors": report.errors}
            else:
                break
            print(json.dumps(reply), flush=True)
    finally:
        observer.close()
        await runtime.aclose()


# -- the parent -------------------------------------------------------------------------------------------------------

class Side:
    def __init__(self, label: str, src: Path, workdir: Path) -> None:
        self.label, self.src, self.workdir = label, src, workdir
        self.cpu_ms: list[float] = []
        self.requests: list[int] = []
        self.lists: list[int] = []
        self.by_kind: Counter[str] = Counter()
        self.write_cycles = 0
        self.info: dict[str, Any] = {}

    def figures(self, backlog: int) -> dict[str, Any]:
        return {
            "code": self.label, "backlog": backlog, "cycles": len(self.cpu_ms),
            "open_signls": self.info.get("open_links"),
            "requests_per_idle_poll": statistics.median(self.requests),
            "requests_per_idle_poll_mean": round(statistics.mean(self.requests), 3),
            "list_reads_per_idle_poll": statistics.median(self.lists),
            "cpu_ms_per_idle_poll": round(statistics.median(self.cpu_ms), 2),
            "cpu_ms_per_idle_poll_mean": round(statistics.mean(self.cpu_ms), 2),
            "cpu_ms_per_idle_poll_p95": round(percentile(self.cpu_ms, 95), 2),
            "store_write_cycles": self.write_cycles,
            "errors": 0,
        }


def measure(side: Side, *, backlog: int, cycles: int, interval: float) -> None:
    with EmulatorProcess(side.workdir / "emulator") as emu:
        emu.call("burst", count=backlog)
        db = side.workdir / "state.db"
        config = emu.call("config", store_url=f"sqlite:///{db}", api_key=False,
                          overrides={"connector": {"poll_interval": f"{interval:g}s"}, "sync": WEBHOOK})
        config_path = side.workdir / "bench.toml"
        config_path.write_text(config, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(side.src), str(REPO / "bench")])}
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(config_path), str(db), str(interval)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env)
        assert child.stdin is not None and child.stdout is not None

        def ask(op: str) -> dict[str, Any]:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(json.dumps({"op": op}) + "\n")
            child.stdin.flush()
            line = child.stdout.readline()
            if not line:
                raise RuntimeError(f"{side.label}: the connector process died")
            answer: dict[str, Any] = json.loads(line)
            return answer

        try:
            side.info = ask("sync")
            if Path(side.info["code"]).resolve() != side.src.resolve():
                raise RuntimeError(f"{side.label}: imported {side.info['code']}, not {side.src}")
            for _ in range(cycles):
                before = emu.counts()
                answer = ask("cycle")
                delta = emu.counts() - before
                if answer["enqueued"] or answer["errors"]:
                    raise RuntimeError(f"{side.label}: not idle: {answer}")
                side.cpu_ms.append(answer["cpu_ms"])
                side.requests.append(sum(delta.values()))
                side.lists.append(delta[LIST])
                side.by_kind.update(delta)
                side.write_cycles += bool(answer["wrote"])
        finally:
            child.stdin.write(json.dumps({"op": "quit"}) + "\n")
            child.stdin.flush()
            child.wait(timeout=60)


def base_commit() -> str:
    return subprocess.run(["git", "-C", str(REPO), "merge-base", "HEAD", "main"], check=True, capture_output=True,
                          text=True).stdout.strip()


def run(args: argparse.Namespace) -> dict[str, Any]:
    commit = args.before or base_commit()
    with tempfile.TemporaryDirectory() as tmp:
        before_tree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(before_tree), commit],
                       check=True)
        try:
            sides = [Side(f"before ({commit[:8]})", before_tree / "src", Path(tmp) / "b"),
                     Side("after (this checkout)", REPO / "src", Path(tmp) / "a")]
            for side in sides:
                side.workdir.mkdir()
                measure(side, backlog=args.backlog, cycles=args.cycles, interval=args.interval)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before_tree)], check=False)
    before, after = (side.figures(args.backlog) for side in sides)
    ratio = {key: round(before[key] / after[key], 2) if after[key] else None
             for key in ("requests_per_idle_poll", "requests_per_idle_poll_mean", "cpu_ms_per_idle_poll",
                         "cpu_ms_per_idle_poll_mean")}
    kinds = sorted({k for side in sides for k in side.by_kind})
    breakdown = {side.label: {k: round(side.by_kind[k] / args.cycles, 3) for k in kinds} for side in sides}
    return {"before": before, "after": after, "before_over_after": ratio, "requests_by_kind_mean": breakdown,
            "interval_s": args.interval}


def render(result: Mapping[str, Any]) -> str:
    fields = ["open_signls", "requests_per_idle_poll", "requests_per_idle_poll_mean", "list_reads_per_idle_poll",
              "cpu_ms_per_idle_poll", "cpu_ms_per_idle_poll_mean", "cpu_ms_per_idle_poll_p95", "store_write_cycles"]
    before, after, ratio = result["before"], result["after"], result["before_over_after"]
    rows = [[f, before[f], after[f], ratio.get(f, "")] for f in fields]
    main = table(["figure", before["code"], after["code"], "before / after"], rows)
    kinds = sorted({k for by in result["requests_by_kind_mean"].values() for k in by})
    labels = list(result["requests_by_kind_mean"])
    breakdown = table(["requests per idle poll (mean)", *labels],
                      [[k, *(result["requests_by_kind_mean"][label].get(k, 0) for label in labels)] for k in kinds])
    return f"{main}\n\n{breakdown}"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        import sentinel_signl4

        code = str(Path(sentinel_signl4.__file__).resolve().parents[1])
        config_text = Path(sys.argv[2]).read_text(encoding="utf-8")
        asyncio.run(_child(config_text, code, Path(sys.argv[3]), float(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=500, help="New incidents lying around (default 500)")
    parser.add_argument("--cycles", type=int, default=60, help="idle cycles per side (default: 30 simulated min)")
    parser.add_argument("--interval", type=float, default=30.0, help="poll interval in seconds (default 30)")
    parser.add_argument("--before", help="commit of the 'before' code (default: git merge-base HEAD main)")
    add_output_arguments(parser)
    args = parser.parse_args()
    saved = saved_report(args)
    if saved is not None:
        publish("backlog_poll", saved, doc_section, args)
        return
    host = machine()
    started = time.perf_counter()
    result = run(args)
    after = result["after"]
    obj = report("backlog_poll", host, vars(args), **{k: after[k] for k in ("requests_per_idle_poll", "errors")},
                 **result, seconds=round(time.perf_counter() - started))
    publish("backlog_poll", obj, doc_section, args, text=render(obj))


def doc_section(obj: Mapping[str, Any]) -> str:
    p = obj["params"]
    return f"""
## Idle poll over a backlog: before and after the incremental poll

{heading(obj)}

One connector, {p['backlog']} New incidents lying around (each paged once and tagged), no new incidents, SIGNL4
changes by webhook. {p['cycles']} idle cycles per side on a clock advancing {p['interval']:g} s per cycle, both sides
in one run: "before" is a `git worktree` of {obj["before"]["code"].split("(")[1].rstrip(")")}, "after" this
checkout. Medians are a plain idle poll; means include the periodic work (after: the full scan every 15 min; both:
the reconciliation sweep, one GET per open Signl up to 100). `store_write_cycles`: cycles in which `run_once`
committed anything to the store (the supervisor's lease renewal left out).

{render(obj)}

Reading: "before" reads the whole backlog at every poll (3 pages of 200 New incidents of the last 24 h) plus the
lifecycle read, and writes its lifecycle cursor every cycle. "After" makes one read of what changed (nothing: an
empty page) and writes only its cursor of changes, once per 5 min. What remains in the means is periodic and
unchanged by this work: the reconciliation sweep (one GET per open Signl, at most 100, every 15 min: 3.3 requests
per poll on average) and, after, the full filtered scan every 15 min (its 3 pages). The p95 is the cycle that runs
them. The lease renewal the supervisor writes before each cycle is counted in the CPU figures, not in
`store_write_cycles`.
"""


if __name__ == "__main__":
    main()
