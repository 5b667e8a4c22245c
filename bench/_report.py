"""Shared bits of the benchmark scripts: the machine line, tables, percentiles, and docs/performance.md sections."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"

_HEADER = """# Performance

Figures measured by the scripts in `bench/` against the emulators (`sentinel_signl4_emulators`) over real HTTPS on
loopback. The emulators run in a process of their own (`bench/_emulator.py`); the benchmark process is the connector,
so its CPU time and memory are the connector's alone. Nothing here is asserted by a test: these are measurements,
re-run and overwritten by each script (each owns one section, between its markers).

Loopback HTTPS to an in-memory emulator is much faster than Azure and SIGNL4 over the internet (tens to hundreds of
milliseconds per call there): wall-clock figures are the connector's own overhead, not what users will see end to end.
"""


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # The load average at the start tells whether something else was competing for the cores.
    return (f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at start")


def rss_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``; 0 where unavailable)."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text(encoding="utf-8").split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv])


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable as plain text in a terminal)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def update_section(name: str, body: str, *, doc: Path = DOC) -> None:
    """Replace (or append) the section between ``<!-- bench:name -->`` and ``<!-- /bench:name -->``."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = doc.read_text(encoding="utf-8") if doc.exists() else _HEADER
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text, encoding="utf-8")


# -- comparable numbers: one JSON object per run, and the docs section rebuilt from it -------------------------------

#: Field names every script uses for the figures they have in common (where they apply): seconds for latencies and
#: periods, MiB for memory, counts for the rest. A script adds its own fields next to them.
VOCABULARY: dict[str, str] = {
    "p50_s": "median latency (s)", "p95_s": "95th percentile latency (s)", "p99_s": "99th percentile latency (s)",
    "poll_period_s": "achieved time between two cycles of one connector (s)",
    "cycles_per_cpu_s": "connector cycles per CPU-second of the connector process(es)",
    "rss_mib": "resident memory of the connector process(es) (MiB)",
    "requests_per_idle_poll": "HTTPS requests per idle poll", "dup": "incidents paged more than once",
    "errors": "failed cycle steps", "429s": "throttled answers",
}
#: Spellings the vocabulary replaces; a report using one is refused, so that two scripts never name a figure twice.
_SYNONYMS = {"p50": "p50_s", "p95": "p95_s", "p99": "p99_s", "duplicates": "dup", "status_429": "429s",
             "rss": "rss_mib", "poll_period": "poll_period_s"}
_HEAD = ("bench", "at", "host", "command", "params")


def report(bench: str, host: str, params: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """The one object a script prints with ``--json``: what ran (``bench``, ``at``, ``host``, ``command``,
    ``params``) and what it measured (vocabulary fields first, script-specific ones after)."""
    return {"bench": bench, "at": stamp(), "host": host, "command": command_line(), "params": dict(params),
            **fields}


def problems(obj: Mapping[str, Any]) -> list[str]:
    """What makes ``obj`` not a report: missing head fields, no vocabulary field at the top level, a vocabulary
    field (at any depth) that is not a number or null, a synonym of a vocabulary name."""
    found = [f"missing {key!r}" for key in _HEAD if key not in obj]
    if not any(key in VOCABULARY for key in obj):
        found.append(f"no top-level field of the vocabulary ({', '.join(VOCABULARY)})")

    def walk(value: Any, where: str) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                here = f"{where}.{key}" if where else str(key)
                if key in VOCABULARY and inner is not None and (
                        isinstance(inner, bool) or not isinstance(inner, int | float)):
                    found.append(f"{here} is not a number: {inner!r}")
                if key in _SYNONYMS:
                    found.append(f"{here}: call it {_SYNONYMS[key]!r}")
                walk(inner, here)
        elif isinstance(value, list):
            for n, inner in enumerate(value):
                walk(inner, f"{where}[{n}]")

    walk({k: v for k, v in obj.items() if k != "params"}, "")
    return found


def emit(obj: Mapping[str, Any]) -> str:
    """``obj`` as one JSON line, after checking it (``problems``); raises ``ValueError`` when it is not a report."""
    wrong = problems(obj)
    if wrong:
        raise ValueError("not a bench report: " + "; ".join(wrong))
    return json.dumps(obj, separators=(", ", ": "), allow_nan=False)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object (the report), nothing else")
    parser.add_argument("--no-doc", action="store_true", help="leave docs/performance.md alone")
    parser.add_argument("--from-json", metavar="FILE", help="rewrite this script's docs/performance.md section from "
                                                            "a report saved with --json; run nothing")


def saved_report(args: argparse.Namespace) -> dict[str, Any] | None:
    """The report of ``--from-json`` (None without it)."""
    if not args.from_json:
        return None
    loaded: dict[str, Any] = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
    return loaded


def publish(name: str, obj: Mapping[str, Any], section: Callable[[Mapping[str, Any]], str],
            args: argparse.Namespace, *, text: str = "") -> None:
    """Print ``obj`` (``--json``) or ``text``, and write the section built from ``obj`` alone unless ``--no-doc``."""
    if args.json:
        print(emit(obj))
    elif text:
        print(text)
    if not args.no_doc:
        update_section(name, section(obj))


def heading(obj: Mapping[str, Any]) -> str:
    """The line under a section's title: when, where and how the figures were made."""
    return f"{obj['at']} · {obj['host']} · `{obj['command']}`"


def finite(value: float) -> float | None:
    """``value`` rounded for a report, None when not finite (JSON has no NaN)."""
    return None if value != value or value in (float("inf"), float("-inf")) else round(value, 4)


def stop_child(proc: subprocess.Popen[Any], *, timeout: float = 60) -> int:
    """SIGTERM ``proc`` (a connector run), wait up to ``timeout`` for its graceful stop, else kill it; its exit code."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
