"""Connectors built together share what does not depend on their workspace: one Log Analytics query client per
credential (its azure-core pipeline and connection pool), where each used to build its own. A connector rebuilt
alone by a reload gets its own, closed when it is dropped, and the others keep theirs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from integration_harness import Harness
from sentinel_signl4.bootstrap import ConnectorParts, build_runtime
from sentinel_signl4.clients.loganalytics import LogAnalyticsClient
from sentinel_signl4.config import parse_config
from sentinel_signl4.engine.enrich import SentinelEnricher


def logs_of(parts: ConnectorParts) -> LogAnalyticsClient:
    enricher = parts.runtime.forward.enricher
    assert isinstance(enricher, SentinelEnricher) and isinstance(enricher.logs, LogAnalyticsClient)
    return enricher.logs


async def test_connectors_of_one_credential_share_one_query_client(harness: Harness) -> None:
    texts = [harness.config_text(name=name, overrides={"signl4": {"allow_shared_team": True}})
             for name in ("alpha", "beta", "gamma")]
    text = texts[0] + "".join("\n" + t[t.index("[[connectors]]"):] for t in texts[1:])
    config = parse_config(text, source="test.toml")
    runtime = await build_runtime(config)
    harness.runtimes.append(runtime)
    clients: set[Any] = {id(logs_of(parts).query_client) for parts in runtime.connectors.values()}
    assert len(clients) == 1

    rebuilt = runtime.build_alone(config.connectors[1], config)
    assert id(logs_of(rebuilt).query_client) not in clients
    await runtime.drop_connector(rebuilt)
    # The shared client still answers for the others.
    now = datetime.now(UTC)
    rows = await logs_of(runtime.connectors["alpha"]).query("SecurityAlert | take 1", start=now - timedelta(hours=1),
                                                            end=now)
    assert rows is not None
