"""Runs a checkout's ``sentinel-signl4 run`` with a cycle counter, for ``bench/cycle_cost.py``.

Started with the checkout's own interpreter (its package first on the path), so any version of the connector can be
measured the same way: ``python _cycle_probe.py SAMPLES_FILE run --config FILE``. It counts completed cycles where
every version has them, in ``ConnectorRuntime.run_once`` (the step the connector's health counts as ``cycles`` and
``/status.json`` shows), and a thread appends one JSON line to ``SAMPLES_FILE`` every ``S4S_PROBE_EVERY`` seconds:
monotonic time, this process's CPU seconds (every thread), cycles, connectors that completed a cycle, cycle errors
and resident memory. The counter adds one integer increment per cycle; the sampling thread wakes twice a second.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _rss_bytes() -> int:
    try:
        return int(Path("/proc/self/statm").read_text(encoding="utf-8").split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def main() -> None:
    samples, cli_args = Path(sys.argv[1]), sys.argv[2:]
    every = float(os.environ.get("S4S_PROBE_EVERY", "0.5"))
    from sentinel_signl4.cli import main as cli_main
    from sentinel_signl4.engine.connector import ConnectorRuntime

    counts = {"cycles": 0, "errors": 0}
    seen: set[str] = set()
    original = ConnectorRuntime.run_once

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        report = await original(self, *args, **kwargs)
        counts["cycles"] += 1
        counts["errors"] += len(report.errors)
        seen.add(self.name)
        return report

    setattr(ConnectorRuntime, "run_once", counted)  # noqa: B010 - the probe's one hook

    def sample() -> None:
        with samples.open("a", encoding="utf-8") as out:
            while True:
                out.write(json.dumps({"t": time.monotonic(), "cpu": time.process_time(), "cycles": counts["cycles"],
                                      "connectors": len(seen), "errors": counts["errors"],
                                      "rss": _rss_bytes()}) + "\n")
                out.flush()
                time.sleep(every)

    threading.Thread(target=sample, name="cycle-probe", daemon=True).start()
    sys.argv = ["sentinel-signl4", *cli_args]
    cli_main()


if __name__ == "__main__":
    main()
