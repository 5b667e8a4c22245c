"""A real ``sentinel-signl4 run`` process for the process-tree tests: started on a config file of its own with its log
(JSON lines) in a file, read back as events, stopped with SIGTERM, killed by the fixture that made it if a test left
it running. Tests subclass it for what their config says (``write``) and add the checks they need."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crash_support import free_port

__all__ = ["DEADLINE", "MODULE", "RunProcess"]

DEADLINE = 90.0  # per wait; generous for a loaded machine, never reached when things work
MODULE: tuple[str, ...] = (sys.executable, "-m", "sentinel_signl4")  # the command as ``python -m``


class RunProcess:
    """``<program> run --config <tmp>/config.toml`` logging to ``<tmp>/run.log``, with a free port for its server."""

    def __init__(self, tmp: Path, program: Sequence[str] = MODULE) -> None:
        self.path = tmp / "config.toml"
        self.log = tmp / "run.log"
        self.port = free_port()
        self.program = tuple(program)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> None:
        with self.log.open("w") as sink:
            self.proc = subprocess.Popen([*self.program, "run", "--config", str(self.path), *args],
                                         stdout=sink, stderr=subprocess.STDOUT)

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """The JSON log lines so far; only those of ``event`` if given."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        return parsed if event is None else [e for e in parsed if e.get("event") == event]

    def seen(self, event: str, count: int = 1, **fields: object) -> bool:
        """At least ``count`` ``event`` lines with these ``fields`` so far (asserts the process still runs)."""
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        return sum(e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
                   for e in self.events()) >= count

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log yet)"
        return "\n".join(self.log.read_text(encoding="utf-8").splitlines()[-lines:])

    async def until(self, condition: Callable[[], bool], what: str, *, within: float = DEADLINE) -> None:
        """Poll ``condition`` until it holds; fail with ``what`` and the log's tail after ``within`` seconds."""
        deadline = time.monotonic() + within
        while not condition():
            assert time.monotonic() < deadline, f"gave up waiting for {what}\n{self.tail()}"
            await asyncio.sleep(0.05)

    def alive(self) -> bool:
        assert self.proc is not None
        return self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        self.signal(signal.SIGTERM)
        assert self.proc is not None
        return self.proc.wait(timeout=DEADLINE)

    def finish(self) -> None:
        """Fixture teardown: kill the process if a test left it running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
