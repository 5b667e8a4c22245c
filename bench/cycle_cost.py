"""Connector cycles per CPU-second: many connectors in one process, idle and with a trickle of incidents.

Each measurement starts fresh processes: the emulators (``bench/_emulator.py``, one Sentinel workspace and one SIGNL4
subscription per connector, ARM's and Sentinel's limits lifted) and the connector as ``sentinel-signl4 run`` with a
config file, through ``bench/_cycle_probe.py``, which counts completed cycles (``ConnectorRuntime.run_once``) and
samples the process's CPU time. ``--checkout LABEL=PATH`` measures another checkout of the repository the same way
(its ``.venv/bin/python`` when it has one, else this interpreter with its ``src`` first on the path), so the figures
of several versions come from one run on one machine; this checkout is measured as ``after`` unless
``--no-self``.

For each variant and size: a warm-up until every connector has completed a cycle (and ``--settle`` s more), then
``--seconds`` s idle (no new incident anywhere), then ``--seconds`` s while the emulator process creates
``--trickle`` incidents per second round-robin over the connectors' workspaces. Per phase:

* **cycles_per_cpu_s**: cycles completed ÷ connector-process CPU seconds (user + system, every thread);
* **cpu_ms_p50 / cpu_ms_p95**: CPU ms per cycle over the probe's half-second samples (CPU of the sample ÷ its cycles);
* **cycles_per_s**: cycles per wall second; **cores**: CPU seconds per wall second;
* **rss_mib**: resident memory at the end; **errors**: cycle steps that failed; **dup**: incidents paged twice.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from _emulator import EmulatorProcess
from _report import command_line, machine, percentile, stamp, table, update_section
from reverse_sync import free_port
from sentinel_signl4.demo_config import toml_value

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PROBE = BENCH / "_cycle_probe.py"
FIELDS = ("cycles_per_cpu_s", "cpu_ms_p50", "cpu_ms_p95", "cycles_per_s", "cores", "rss_mib", "errors", "dup")


# -- the config file ------------------------------------------------------------------------------------------------

def _toml_tables(prefix: str, values: dict[str, Any], *, array: bool = False) -> list[str]:
    """``values`` as a TOML table named ``prefix`` (sub-tables after its keys)."""
    scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
    lines = [f"[[{prefix}]]" if array else f"[{prefix}]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in scalars.items()]
    for key, sub in values.items():
        if isinstance(sub, dict):
            lines += _toml_tables(f"{prefix}.{key}", sub)
    return lines


def config_text(emu: EmulatorProcess, *, connectors: int, interval: float, store_url: str, port: int) -> str:
    """One connector per extra tenant of ``emu`` (named c0000…), as ``EmulatorProcess.config`` builds them, in TOML
    that every measured version reads."""
    base = tomllib.loads(emu.call("config", store_url=store_url, api_key=True,
                                  overrides={"connector": {"poll_interval": f"{interval:g}s"}}))
    template = base.pop("connectors")[0]
    base["server"] = {"host": "127.0.0.1", "port": port}
    lines: list[str] = []
    for name, table_ in base.items():
        lines += _toml_tables(name, table_)
    for i, tenant in enumerate(emu.tenants[:connectors]):
        item = json.loads(json.dumps(template))
        item.update(name=f"c{i:04d}", display_name=f"Bench {i}")
        item["azure"].update(workspace_name=tenant["workspace_name"], resource_group="rg-bench",
                             workspace_id=tenant["workspace_id"])
        item["signl4"].update(webhook_url=f"{emu.base_url}/webhook/{tenant['team_secret']}",
                              api_key=tenant["api_key"], subscription=f"bench-{i:04d}")
        lines += _toml_tables("connectors", item, array=True)
    return "\n".join(lines) + "\n"


# -- one measurement --------------------------------------------------------------------------------------------------

def interpreter(checkout: Path | None) -> tuple[str, dict[str, str]]:
    """The Python that runs ``checkout``'s connector, and its environment."""
    env = dict(os.environ)
    if checkout is None:
        return sys.executable, env
    own = checkout / ".venv" / "bin" / "python"
    if own.exists():
        return str(own), env
    env["PYTHONPATH"] = os.pathsep.join([str(checkout / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return sys.executable, env


def read_samples(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def wait_samples(path: Path, proc: subprocess.Popen[bytes], log: Path, until: Any, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        samples = read_samples(path)
        if samples and until(samples[-1]):
            return samples[-1]
        if proc.poll() is not None:
            sys.exit(f"the connector exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            sys.exit(f"gave up after {within:.0f} s; last sample {samples[-1:]}:\n"
                     f"{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.25)


def log_problems(log: Path, most: int = 5) -> dict[str, int]:
    """The connector log's warning and error lines over the whole run, by event and the error's first words."""
    found: Counter[str] = Counter()
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.search(r"\[(warning|error)\s*\]\s+(\S+)(.*?error=(.{0,80}))?", line)
        if match:
            found[f"{match.group(2)}: {(match.group(4) or '').strip()}"] += 1
    return dict(found.most_common(most))


def phase(samples: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    window = [s for s in samples if start <= s["t"] <= end]
    first, last = window[0], window[-1]
    cycles, cpu, wall = last["cycles"] - first["cycles"], last["cpu"] - first["cpu"], last["t"] - first["t"]
    per_cycle = [1000 * (b["cpu"] - a["cpu"]) / (b["cycles"] - a["cycles"])
                 for a, b in itertools.pairwise(window) if b["cycles"] > a["cycles"]]
    return {
        "cycles": cycles, "cpu_s": round(cpu, 3), "wall_s": round(wall, 2),
        "cycles_per_cpu_s": round(cycles / cpu, 1) if cpu else None,
        "cpu_ms_p50": round(percentile(per_cycle, 50), 2), "cpu_ms_p95": round(percentile(per_cycle, 95), 2),
        "cycles_per_s": round(cycles / wall, 1), "cores": round(cpu / wall, 2),
        "rss_mib": round(last["rss"] / 2**20, 1), "errors": last["errors"] - first["errors"],
    }


def measure(label: str, checkout: Path | None, size: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    python, env = interpreter(checkout)
    with tempfile.TemporaryDirectory(prefix="s4s-cycle-cost-") as tmp_name:
        tmp = Path(tmp_name)
        with EmulatorProcess(tmp / "emulator", tenants=size, open_arm_limits=True) as emu:
            config, samples, log = tmp / "config.toml", tmp / "samples.jsonl", tmp / "connector.log"
            config.write_text(config_text(emu, connectors=size, interval=args.interval,
                                          store_url=f"sqlite:///{tmp / 'state.db'}", port=free_port()),
                              encoding="utf-8")
            command = [python, str(PROBE), str(samples), "run", "--config", str(config)]
            if args.profile and label in args.profile_variant.split(","):
                out_file = Path(f"{args.profile}.{label}.{size}.{'txt' if args.profile_raw else 'svg'}")
                command = [args.py_spy, "record", "--nonblocking", "--rate", "50", "-o", str(out_file),
                           *(["--format", "raw"] if args.profile_raw else []), "--", *command]
            with log.open("wb") as out:
                proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp)
            try:
                started = time.monotonic()
                wait_samples(samples, proc, log, lambda s: s["connectors"] >= size, within=args.warmup_limit)
                warmup = time.monotonic() - started
                time.sleep(args.settle)
                emulator_cpu = [emu.call("usage")["cpu_seconds"]]
                idle_start = time.monotonic()
                time.sleep(args.seconds)
                idle_end = trickle_start = time.monotonic()
                emulator_cpu.append(emu.call("usage")["cpu_seconds"])
                streamed: list[Any] = []
                creator = threading.Thread(target=lambda: streamed.extend(emu.call(
                    "stream", rate=args.trickle, duration=args.seconds, tenants=size)))
                creator.start()
                creator.join()
                trickle_end = time.monotonic()
                emulator_cpu.append(emu.call("usage")["cpu_seconds"])
                time.sleep(0.6)
                alerts = Counter(a["external_id"] for a in emu.call("alerts"))
                statuses = emu.statuses()
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            rows = read_samples(samples)
            problems = log_problems(log)
    results = []
    for n, (load, start, end) in enumerate((("idle", idle_start, idle_end), ("trickle", trickle_start, trickle_end))):
        figures = phase(rows, start, end)
        figures["emulator_cores"] = round((emulator_cpu[n + 1] - emulator_cpu[n]) / (end - start), 2)
        result = {"variant": label, "connectors": size, "load": load, "interval_s": args.interval,
                  **figures, "dup": 0, "warmup_s": round(warmup, 1)}
        if figures["errors"]:
            result["warnings_in_log"] = problems
        if load == "trickle":
            result["incidents"] = len(streamed)
            result["dup"] = sum(n - 1 for n in alerts.values() if n > 1)
            result["429s"] = sum(n for (_, status), n in statuses.items() if status == 429)
        results.append(result)
    return results


# -- report -----------------------------------------------------------------------------------------------------------

def render(results: list[dict[str, Any]]) -> str:
    rows = [[r["variant"], r["connectors"], r["load"], r["cycles_per_cpu_s"], r["cpu_ms_p50"], r["cpu_ms_p95"],
             r["cycles_per_s"], r["cores"], r.get("emulator_cores", ""), r["rss_mib"], r["errors"], r["dup"]]
            for r in results]
    return table(["variant", "connectors", "load", "cycles/CPU-s", "CPU ms/cycle p50", "p95", "cycles/s", "cores",
                  "emulator cores", "RSS MiB", "errors", "dup"], rows)


def ratios(results: list[dict[str, Any]], variants: list[str]) -> str:
    if len(variants) < 2:
        return ""
    first = variants[0]
    rows = []
    for size in sorted({r["connectors"] for r in results}):
        for load in ("idle", "trickle"):
            by = {r["variant"]: r for r in results if r["connectors"] == size and r["load"] == load}
            if first not in by:
                continue
            base = by[first]["cycles_per_cpu_s"]
            rows.append([size, load, *(f"{by[v]['cycles_per_cpu_s'] / base:.2f}×" if v in by else "" for v in
                                       variants[1:])])
    return table(["connectors", "load", *(f"{v} ÷ {first}" for v in variants[1:])], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000", help="connector counts, e.g. 200,1000")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval of every connector (s)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase (idle, trickle)")
    parser.add_argument("--trickle", type=float, default=2.0, help="new incidents per second in the trickle phase")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the warm-up before measuring")
    parser.add_argument("--warmup-limit", type=float, default=600.0)
    parser.add_argument("--checkout", action="append", default=[], metavar="LABEL=PATH",
                        help="another checkout to measure (repeatable), e.g. before=../before")
    parser.add_argument("--no-self", action="store_true", help="measure only the --checkout variants")
    parser.add_argument("--label", default="after", help="this checkout's label")
    parser.add_argument("--profile", help="flame graph path prefix (py-spy): profile the --profile-variant")
    parser.add_argument("--profile-variant", default="after", help="the variants to profile, e.g. before,after")
    parser.add_argument("--profile-raw", action="store_true", help="collapsed stacks (text) instead of an SVG")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"))
    parser.add_argument("--json", action="store_true", help="print one JSON object per measurement")
    parser.add_argument("--no-doc", action="store_true", help="leave docs/performance.md alone")
    args = parser.parse_args()
    if args.profile:
        args.profile = str(Path(args.profile).resolve())  # the connector runs in its own directory
    host = machine()
    variants: list[tuple[str, Path | None]] = []
    for item in args.checkout:
        label, _, path = item.partition("=")
        variants.append((label, Path(path).resolve()))
    if not args.no_self:
        variants.append((args.label, None))
    results: list[dict[str, Any]] = []
    began = time.monotonic()
    for size in (int(s) for s in args.sizes.split(",")):
        for label, checkout in variants:
            for result in measure(label, checkout, size, args):
                results.append(result)
                if args.json:
                    print(json.dumps(result), flush=True)
            print(f"{label} {size}: done ({time.monotonic() - began:.0f} s)", file=sys.stderr)
    figures = render(results)
    ratio = ratios(results, [label for label, _ in variants])
    if not args.json:
        print(figures)
        print(ratio)
    if not args.no_doc:
        update_section("cycle_cost", doc_section(args, variants, results, figures, ratio, host))


def doc_section(args: argparse.Namespace, variants: list[tuple[str, Path | None]], results: list[dict[str, Any]],
                figures: str, ratio: str, host: str) -> str:
    def rev(path: Path | None) -> str:
        where = str(path or REPO)
        found = subprocess.run(["git", "-C", where, "rev-parse", "--short=7", "HEAD"], capture_output=True,
                               text=True, check=False)
        return found.stdout.strip() or "?"

    named = ", ".join(f"**{label}** = `{rev(path)}`" + ("" if path else " (this checkout)") for label, path in variants)
    objects = "\n".join(json.dumps(r) for r in results)
    intro = textwrap.fill(
        f"Connectors at a {args.interval:g}-s poll interval in one process (`sentinel-signl4 run`, SQLite store, "
        f"SIGNL4 API key set), each with its own workspace and SIGNL4 subscription; {args.seconds:g} s idle, then "
        f"{args.seconds:g} s with {args.trickle:g} new incidents/s round-robin over the workspaces. Every variant "
        f"in fresh processes, in one run: {named}.", width=118)
    return f"""
## Cycles per CPU-second (`bench/cycle_cost.py`)

{stamp()} · {host} · `{command_line()}`

{intro}

{figures}

{ratio}

JSON objects (`--json`):

```
{objects}
```
"""


if __name__ == "__main__":
    main()
