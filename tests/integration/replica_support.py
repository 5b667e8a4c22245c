"""Several connector replicas as real processes (``replica_process.py``) against the in-test-process emulators and
one shared store, and what the multi-replica tests check: each incident of a burst paged exactly once.

Every wait polls a condition with a deadline and fails with what it was waiting for and the tails of the logs.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crash_support import CONCURRENCY
from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, ActionState, external_id_for
from sentinel_signl4.store import StateStore
from sentinel_signl4_emulators.common.faults import FaultRule

__all__ = ["CONNECTOR", "DEADLINE", "LEASE", "Replica", "ReplicaSet"]

CONNECTOR = "contoso"
LEASE = f"connector:{CONNECTOR}"
DEADLINE = 90.0  # per wait; generous for a loaded 2-core machine, never reached when things work
DRIVER = Path(__file__).resolve().parent / "replica_process.py"
# Only the burst seeded here (High, created minutes ago), not the demo world's incidents.
ONLY_BURST = {"severities": ["High"], "max_age": "15m"}


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    log: Path
    source: str  # the SIGNL4 event source its webhook secret stands for
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.info["replica"])

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def started(self) -> bool:
        """Its first line (the JSON with its id) is out."""
        first = self.text().partition("\n")
        return bool(first[1]) and first[0].startswith("{")

    def tail(self, lines: int = 20) -> str:
        return f"--- last {lines} lines of {self.log.name} ---\n" + "\n".join(self.text().splitlines()[-lines:])


@dataclass
class ReplicaSet:
    harness: Harness
    store: StateStore
    store_url: str
    names: list[str]
    ttl: float
    poll: str
    request_timeout: float | None = None  # seconds per remote request; None: the product's
    replicas: list[Replica] = field(default_factory=list)

    @classmethod
    def build(cls, harness: Harness, store: StateStore, store_url: str, *, incidents: int, ttl: float,
              poll: str, request_timeout: float | None = None) -> ReplicaSet:
        now = datetime.now(UTC)
        names = [harness.state.sentinel.create_incident(
            harness.world.workspace, title=f"Replica burst {n}", severity="High",
            created=now - timedelta(minutes=2, seconds=n))["name"] for n in range(incidents)]
        return cls(harness, store, store_url, names, ttl, poll, request_timeout)

    # -- processes ----------------------------------------------------------------------------------------------
    async def start(self, prefix: Sequence[str] = ()) -> Replica:
        """Start replica ``n`` (0, 1, …) and wait for its first line. It sends to the team through a webhook secret
        of its own (an integration secret: another event source of the same team), so the test can tell which
        replica sent what (``sent_by``)."""
        (replica,) = await self.start_together(1, prefix)
        return replica

    async def start_together(self, count: int, prefix: Sequence[str] = ()) -> list[Replica]:
        """Start ``count`` replicas at once (each as ``start`` does), then wait until every one has started."""
        started = [self._spawn(prefix) for _ in range(count)]
        for replica in started:
            await self.wait_until(f"replica {self.replicas.index(replica)} to start", replica.started)
            replica.info = json.loads(replica.text().partition("\n")[0])
        return started

    def _spawn(self, prefix: Sequence[str]) -> Replica:
        n = len(self.replicas)
        secret = self.harness.state.signl4.add_team_secret(self.harness.world.signl4_team_id)
        config = self.harness.tmp / f"replica-{n}.toml"
        config.write_text(self.harness.config_text(
            store_url=self.store_url,
            overrides={"filter": ONLY_BURST, "connector": {"poll_interval": self.poll},
                       "signl4": {"webhook_url": f"{self.harness.server.base_url}/webhook/{secret}"}},
            extra_tables="[connectors.enrichment]\nenabled = false\n"), encoding="utf-8")
        log = self.harness.tmp / f"replica-{n}.log"
        timeout = [] if self.request_timeout is None else [str(self.request_timeout)]
        proc = _spawn([*prefix, sys.executable, str(DRIVER), str(config), str(self.ttl), *timeout], log)
        replica = Replica(proc, log, source=self.harness.state.signl4.teams[
            self.harness.world.signl4_team_id].secrets[secret])
        self.replicas.append(replica)
        return replica

    def stop_all(self) -> None:
        for replica in self.replicas:
            if replica.proc.poll() is None:
                replica.proc.kill()  # SIGKILL ends a SIGSTOPped process too
                replica.proc.wait()

    async def close(self) -> None:
        self.stop_all()
        await self.store.close()

    # -- waiting ------------------------------------------------------------------------------------------------
    def logs(self) -> str:
        return "\n".join(r.tail() for r in self.replicas) or "(no replica log)"

    async def wait_until(self, what: str, check: Callable[[], bool | Awaitable[bool]], *,
                         within: float = DEADLINE) -> None:
        deadline = time.monotonic() + within
        while True:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return
            exited = [r for r in self.replicas if r.proc.poll() is not None]
            if exited:
                pytest.fail(f"a replica exited ({exited[0].proc.returncode}) while waiting for {what}\n{self.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"gave up after {within:.0f} s waiting for {what}; alerts={len(self.harness.alerts())}, "
                            f"outbox={await self.counts()}\n{self.logs()}")
            await asyncio.sleep(0.02)

    # -- what the store and the emulators say -------------------------------------------------------------------
    async def counts(self) -> dict[str, int]:
        return {state.value: n for state, n in (await self.store.count_actions(CONNECTOR)).items() if n}

    async def in_flight(self) -> int:
        rows = await self.store.list_actions(CONNECTOR, states=[ActionState.IN_FLIGHT], limit=10_000)
        return sum(1 for row in rows if row.kind is ActionKind.RAISE_SIGNL)

    async def holder(self) -> str | None:
        return await self.store.lease_holder(LEASE)

    async def held_by(self, replica: Replica) -> bool:
        return await self.holder() == replica.id

    async def stuck(self, hold: FaultRule, sends: int) -> bool:
        """``sends`` sends held so far, and as many send rows IN_FLIGHT as one replica runs at once."""
        return hold.fired >= sends and await self.in_flight() == CONCURRENCY

    def external_ids(self) -> dict[str, str]:
        ids = {i["name"]: i["id"] for i in self.harness.incidents()}
        return {external_id_for(CONNECTOR, ids[name]): name for name in self.names}

    def sent_by(self, replica: Replica) -> int:
        """How many Signls ``replica`` sent (through its own webhook secret)."""
        return sum(1 for alert in self.harness.alerts() if alert.event_source_id == replica.source)

    def alert_counts(self) -> Counter[str]:
        return Counter(alert.external_id for alert in self.harness.alerts())

    async def all_paged_and_quiet(self) -> bool:
        counts = self.alert_counts()
        if not all(counts[ext] for ext in self.external_ids()):
            return False
        open_rows = await self.store.count_actions(CONNECTOR)
        return open_rows[ActionState.PENDING] + open_rows[ActionState.IN_FLIGHT] == 0

    async def assert_exactly_once(self) -> None:
        ids, counts = self.external_ids(), self.alert_counts()
        wrong = {ids[ext]: counts[ext] for ext in ids if counts[ext] != 1}
        assert not wrong, f"{len(wrong)} incidents without exactly one Signl (name: count): {wrong}\n{self.logs()}"
        assert sum(counts.values()) == len(self.names), "alerts that belong to no incident of the burst"
        dead = (await self.store.count_actions(CONNECTOR))[ActionState.DEAD]
        assert dead == 0, f"{dead} dead-lettered rows\n{self.logs()}"


def _spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
