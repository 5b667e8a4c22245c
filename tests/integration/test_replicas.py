"""Scale-out: several replicas sharing PostgreSQL run each connector once; every incident pages exactly once."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from integration_harness import Harness

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sentinel_signl4.domain import external_id_for
from store_fixtures import drop_schema, new_schema_name, require_postgres, with_schema


async def test_three_replicas_on_postgres_page_each_incident_once(harness: Harness) -> None:
    server_url = require_postgres()
    schema = new_schema_name()
    url = with_schema(server_url, schema)
    try:
        now = datetime.now(UTC)
        names = [harness.state.sentinel.create_incident(
            harness.world.workspace, title=f"Replica burst {n}", severity="High",
            created=now - timedelta(minutes=2, seconds=n))["name"] for n in range(40)]
        runtimes = [await harness.runtime(store_url=url, overrides={"connector": {"poll_interval": "0.2s"}})
                    for _ in range(3)]
        supervisors = [r.supervisor(lease_ttl=5.0) for r in runtimes]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stop)) for s in supervisors]
        incidents = {i["name"]: i["id"] for i in harness.incidents()}
        wanted = {external_id_for("contoso", incidents[n]) for n in names}
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            raised = {a.external_id for a in harness.alerts()}
            if wanted <= raised:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # let any straggler replica run a cycle: it must not page again
        stop.set()
        await asyncio.gather(*tasks)
        counts = Counter(a.external_id for a in harness.alerts())
        assert all(counts[e] == 1 for e in wanted), {e: counts[e] for e in wanted if counts[e] != 1}
        cycles = [r.connectors["contoso"].runtime.health.cycles for r in runtimes]
        assert sum(1 for c in cycles if c > 0) >= 1
    finally:
        await drop_schema(server_url, schema)
