"""What the crash tests share: a real ``sentinel-signl4 run`` subprocess against the in-test-process emulators, killed
at points placed with fault rules, and the checks of what survived.

The emulators run in the test process (session fixture ``emulator``); the connector runs as a subprocess that reaches
them over HTTPS, with its state in a SQLite file the test reads too. Kills are placed with fault rules, not with
sleeps: a remote side applies each request and answers a little later (``SLOW``), and from a chosen request on a
*hold* rule keeps the answers back for longer than any test (``HOLD``), so the test can wait until the connector is
stuck exactly there and kill it. Every wait polls a condition with a deadline (``DEADLINE``) and fails with what it
was waiting for, the store's counts and the tail of the connector's log.

Recovery is ``run --once`` until quiescent; it takes the killed process's lease over at once, because the killed
process's instance lock (``engine/instances.py``) died with it.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, ActionState, external_id_for
from sentinel_signl4.engine.outbox import OutboxWorker
from sentinel_signl4.store import OutboxAction, StateStore
from sentinel_signl4_emulators.common.faults import FaultRule

__all__ = ["CONCURRENCY", "CONNECTOR", "DEADLINE", "HOLD", "INCIDENT_PUT", "SLOW", "Scenario", "free_port", "has_tag"]

CONNECTOR = "contoso"
# How many outbox rows can be in flight at once: the most a crash can leave in doubt.
CONCURRENCY: int = inspect.signature(OutboxWorker).parameters["concurrency"].default
INCIDENT_PUT = r"/providers/Microsoft\.SecurityInsights/incidents/[^/]+$"
SLOW = 0.03  # seconds SIGNL4 (or Sentinel) holds each answer after applying the request
HOLD = 60.0  # longer than the test: held answers never arrive before the kill
DEADLINE = 60.0  # per wait; generous for a slow 2-core CI machine, never reached when things work


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for the subprocess's web server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Scenario:
    harness: Harness
    store: StateStore
    config: Path
    names: list[str]
    logs: list[Path] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # -- the connector process -------------------------------------------------------------------------------------
    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.harness.tmp / f"connector-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sentinel_signl4", "run", "--config", str(self.config), *args],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.procs.append(proc)
        return proc

    def log_tail(self, lines: int = 25) -> str:
        if not self.logs:
            return "(no connector log)"
        text = self.logs[-1].read_text(encoding="utf-8", errors="replace").splitlines()
        return f"--- last {lines} lines of {self.logs[-1].name} ---\n" + "\n".join(text[-lines:])

    async def wait_until(self, what: str, check: Callable[[], bool | Awaitable[bool]], *,
                         proc: subprocess.Popen[bytes] | None = None, within: float = DEADLINE) -> None:
        deadline = time.monotonic() + within
        while True:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"the connector exited ({proc.returncode}) while waiting for {what}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"gave up after {within:.0f} s waiting for {what}; alerts={len(self.harness.alerts())}, "
                            f"outbox={await self.counts()}\n{self.log_tail()}")
            await asyncio.sleep(0.01)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=DEADLINE)

    async def recover(self, runs: int = 3, *, quiescent: Callable[[], Awaitable[bool]] | None = None) -> None:
        """``run --once`` until no outbox row is open (in-doubt rows, then the tags they lead to), or until
        ``quiescent()`` says so."""
        done = quiescent or self.quiescent
        for _ in range(runs):
            proc = self.start("--once")
            try:
                code = await asyncio.to_thread(proc.wait, DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                pytest.fail(f"run --once did not finish within {DEADLINE:.0f} s\n{self.log_tail()}")
            assert code == 0, f"run --once exited {code}\n{self.log_tail()}"
            if await done():
                return
        pytest.fail(f"not quiescent after {runs} runs: outbox={await self.counts()}\n{self.log_tail()}")

    async def close(self) -> None:
        """Kill what is still running (a failed test's connector) and close the store."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        await self.store.close()

    # -- what the store and the emulators say ---------------------------------------------------------------------
    async def counts(self) -> dict[str, int]:
        return {state.value: n for state, n in (await self.store.count_actions(CONNECTOR)).items() if n}

    async def quiescent(self) -> bool:
        return await self.open_rows() == 0

    async def open_rows(self) -> int:
        counts = await self.store.count_actions(CONNECTOR)
        return counts[ActionState.PENDING] + counts[ActionState.IN_FLIGHT]

    async def rows(self, kind: ActionKind) -> list[OutboxAction]:
        return [row for row in await self.store.list_actions(CONNECTOR, limit=100_000) if row.kind is kind]

    async def in_doubt(self, kind: ActionKind = ActionKind.RAISE_SIGNL) -> dict[str, OutboxAction]:
        """Rows whose outcome the connector does not know: left IN_FLIGHT by the kill, or marked in doubt."""
        return {row.key: row for row in await self.rows(kind)
                if row.state is ActionState.IN_FLIGHT or (row.in_doubt and row.state is ActionState.PENDING)}

    def external_ids(self) -> dict[str, str]:
        """External id → incident name, for the burst."""
        ids = {i["name"]: i["id"] for i in self.harness.incidents()}
        return {external_id_for(CONNECTOR, ids[name]): name for name in self.names}

    def alert_counts(self) -> Counter[str]:
        return Counter(alert.external_id for alert in self.harness.alerts())

    def tagged(self) -> int:
        burst = set(self.names)
        return sum(1 for i in self.harness.incidents() if i["name"] in burst and has_tag(i))

    # -- kills at a chosen moment ---------------------------------------------------------------------------------
    def arm(self, *, path: str, method: str, after: int) -> FaultRule:
        """The first ``after`` requests on ``path`` are applied and answered ``SLOW`` seconds later; every later one
        is applied and its answer held. Rules apply in order, so the switch happens at exactly that request."""
        faults = self.harness.state.faults
        faults.add(FaultRule(path=path, method=method, kind="delay", phase="after", delay=SLOW, count=after))
        return faults.add(FaultRule(path=path, method=method, kind="delay", phase="after", delay=HOLD))

    async def kill_when_held(self, proc: subprocess.Popen[bytes], hold: FaultRule, *, kind: ActionKind,
                             applied: Callable[[], int]) -> dict[str, OutboxAction]:
        """Wait until the whole outbox concurrency is stuck on ``hold`` with the side effects applied remotely and
        the rows IN_FLIGHT in the store, then kill -9. Returns the rows left in doubt."""
        await self.wait_until(f"{CONCURRENCY} requests held", lambda: hold.fired >= CONCURRENCY, proc=proc)

        async def settled() -> bool:
            rows = await self.rows(kind)
            done = sum(1 for r in rows if r.state is ActionState.DONE)
            in_flight = sum(1 for r in rows if r.state is ActionState.IN_FLIGHT)
            # Every attempt the store shows in flight has reached the remote side, and nothing else is moving.
            return in_flight == CONCURRENCY and applied() == done + in_flight

        await self.wait_until(f"{CONCURRENCY} {kind.value} attempts applied remotely but unanswered", settled,
                              proc=proc)
        self.kill(proc)
        self.harness.state.faults.clear()
        doubtful = await self.in_doubt(kind)
        assert len(doubtful) == CONCURRENCY, f"expected {CONCURRENCY} rows in doubt, found {len(doubtful)}"
        return doubtful

    # -- the guarantees -------------------------------------------------------------------------------------------
    def assert_matching_set(self) -> None:
        cutoff = datetime.now(UTC) - timedelta(minutes=15)
        matching = {i["name"] for i in self.harness.incidents()
                    if i["properties"]["severity"] == "High" and i["properties"]["status"] == "New"
                    and datetime.fromisoformat(i["properties"]["createdTimeUtc"]) >= cutoff}
        assert matching == set(self.names), "the filter should match exactly the seeded burst"

    async def assert_clean_outbox(self) -> None:
        counts = await self.store.count_actions(CONNECTOR)
        assert (counts[ActionState.PENDING], counts[ActionState.IN_FLIGHT], counts[ActionState.DEAD]) == (0, 0, 0), \
            f"outbox not clean: {await self.counts()}\n{self.log_tail()}"

    def assert_all_tagged(self) -> None:
        burst = set(self.names)
        labels = {i["name"]: [lb["labelName"] for lb in i["properties"]["labels"]]
                  for i in self.harness.incidents() if i["name"] in burst}
        wrong = {name: ls for name, ls in labels.items() if ls.count("SIGNL4") != 1}
        assert not wrong, f"{len(wrong)} incidents not tagged exactly once, e.g. {list(wrong.items())[:3]}"

    async def assert_exactly_once(self) -> None:
        self.assert_matching_set()
        ids, counts = self.external_ids(), self.alert_counts()
        wrong = {ids[ext]: counts[ext] for ext in ids if counts[ext] != 1}
        assert not wrong, f"{len(wrong)} incidents without exactly one Signl (name: count): {wrong}\n{self.log_tail()}"
        assert sum(counts.values()) == len(self.names), "alerts that belong to no incident of the burst"
        self.assert_all_tagged()
        await self.assert_clean_outbox()


def has_tag(incident: dict[str, object]) -> bool:
    props = incident["properties"]
    assert isinstance(props, dict)
    return any(label["labelName"] == "SIGNL4" for label in props["labels"])
