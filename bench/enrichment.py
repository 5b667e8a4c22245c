"""Benchmark: remote calls and latency of enrichment for a poll of N incidents, against the emulators.

The emulators run in a separate process (this script re-executes itself with ``--serve``) behind real HTTPS, so
the numbers include TLS, the JSON round trips, azure-identity and azure-monitor-query's own stack — the same
production classes the connector uses (SentinelClient, LogAnalyticsClient, SentinelEnricher).

Usage::

    .venv/bin/python bench/enrichment.py                     # N = 1, 10, 50; 30 rounds each
    .venv/bin/python bench/enrichment.py --sizes 1 10 100 --rounds 50 --la-latency 0.2
    .venv/bin/python bench/enrichment.py --sizes 10 --rounds 3 --la-latency 60 --budget 2   # the budget holds

ARM's token-bucket throttling is switched off in the emulator process: the benchmark measures our latency, not
the emulator's 429s (what the real per-operation limits mean for call counts is in docs/performance.md).
Prints a table (``--json``: one report object) and writes its section of docs/performance.md; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from _report import add_output_arguments, heading, machine, publish, report, saved_report, table
from sentinel_signl4.clients.http import build_http_client
from sentinel_signl4.clients.identity import TokenProvider, build_credential
from sentinel_signl4.clients.loganalytics import LogAnalyticsClient, QueryGate
from sentinel_signl4.clients.retry import RetryPolicy
from sentinel_signl4.clients.sentinel import SentinelClient
from sentinel_signl4.config.signl_content import DEFAULT_COLUMNS, DEFAULT_QUERY
from sentinel_signl4.domain import Incident, Severity
from sentinel_signl4.engine.enrich import EnrichmentSettings, SentinelEnricher
from sentinel_signl4.sources.sentinel import SentinelSource


def serve(directory: Path, incidents: int) -> None:
    """Child process: seeded emulators over HTTPS with ``incidents`` extra incidents; prints one JSON line."""
    from sentinel_signl4_emulators.app import EmulatorState
    from sentinel_signl4_emulators.common.throttle import BucketPolicy
    from sentinel_signl4_emulators.seed import seed_demo
    from sentinel_signl4_emulators.sentinel.model import EntitySeed, SecurityAlertSeed
    from sentinel_signl4_emulators.server import EmulatorServer

    state = EmulatorState.new()
    now = datetime.now(UTC)
    world = seed_demo(state, now)
    unlimited = BucketPolicy(capacity=1_000_000, refill_per_second=1_000_000)
    for operation in ("reads", "writes"):
        state.sentinel.throttle.configure(operation, unlimited)
    for n in range(incidents):
        host = EntitySeed("Host", {"hostName": f"WS-{n:04d}", "dnsDomain": "contoso.com"})
        account = EntitySeed("Account", {"accountName": f"user{n}", "upnSuffix": "contoso.com"})
        ip = EntitySeed("Ip", {"address": f"10.{n // 250}.{n % 250}.7"})
        alerts = [SecurityAlertSeed(f"Suspicious PowerShell {k}", Severity.HIGH, "Microsoft Defender for Endpoint",
                                    now - timedelta(minutes=10 + k), tactics=("Execution",),
                                    entity_ids=(host.entity_id, account.entity_id))
                  for k in range(3)]
        state.sentinel.create_incident(world.workspace, title=f"Bench incident {n}", severity="High",
                                       created=now - timedelta(minutes=5), alerts=alerts,
                                       entities=[host, account, ip])
    with EmulatorServer(state, directory) as server:
        print(json.dumps({"base_url": server.base_url, "ca": str(server.ca_path), "world": world.to_json()}),
              flush=True)
        sys.stdin.read()  # until the parent closes our stdin


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def measure(info: dict[str, Any], sizes: list[int], rounds: int, la_latency: float,
                  budget: float) -> list[dict[str, Any]]:
    base, ca, world = info["base_url"], info["ca"], info["world"]
    credential = build_credential(kind="client_secret", tenant_id=world["tenantId"], client_id=world["clientId"],
                                  secret=world["clientSecret"], authority_host=base, ca_bundle=ca)
    results: list[dict[str, Any]] = []
    async with TokenProvider(credential) as tokens, build_http_client(ca_bundle=ca) as http:
        await http.post(f"{base}/_control/loganalytics/latency", json={"seconds": la_latency})
        sentinel = SentinelClient(http, tokens, arm_endpoint=base, subscription_id=world["subscriptionId"],
                                  resource_group=world["resourceGroup"], workspace_name=world["workspaceName"],
                                  retry=RetryPolicy())
        logs = LogAnalyticsClient(tokens, workspace_id=world["workspaceId"], endpoint=base, ca_bundle=ca,
                                  gate=QueryGate())
        enricher = SentinelEnricher("bench", sentinel=sentinel, logs=logs, settings=EnrichmentSettings(
            query=DEFAULT_QUERY, columns=DEFAULT_COLUMNS, budget=budget))
        try:
            incidents: list[Incident] = [i async for i in _all_incidents(sentinel)]
            bench = [i for i in incidents if i.title.startswith("Bench incident")]
            await enricher.enrich(bench[:1], datetime.now(UTC))  # warm up: token, connections
            for size in sizes:
                batch = bench[:size]
                timings: list[float] = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    enrichments = await enricher.enrich(batch, datetime.now(UTC))
                    timings.append(time.perf_counter() - started)
                report = enricher.last_report
                rows = sum(len(e.rows) for e in enrichments.values())
                results.append({
                    "incidents": len(batch), "alert_calls": report.alert_calls, "entity_calls": report.entity_calls,
                    "queries": report.queries, "remote_calls": report.remote_calls, "rows": rows,
                    "failures": len(report.failures), "p50_ms": percentile(timings, 0.50) * 1000,
                    "p95_ms": percentile(timings, 0.95) * 1000, "rounds": rounds,
                    "p50_s": round(percentile(timings, 0.50), 4), "p95_s": round(percentile(timings, 0.95), 4),
                })
        finally:
            await logs.close()
    return results


async def _all_incidents(sentinel: SentinelClient) -> Any:
    async for incident in SentinelSource(sentinel).list_modified_since(datetime.now(UTC) - timedelta(days=7)):
        yield incident


def render(results: list[dict[str, Any]]) -> str:
    return table(["N", "alerts", "entities", "LA queries", "calls", "rows", "failed", "p50 ms", "p95 ms"],
                 [[r["incidents"], r["alert_calls"], r["entity_calls"], r["queries"], r["remote_calls"], r["rows"],
                   r["failures"], f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}"] for r in results])


def doc_section(obj: Mapping[str, Any]) -> str:
    p = obj["params"]
    return f"""
## Enrichment of one poll (`bench/enrichment.py`)

{heading(obj)}

Alerts, entities and one Log Analytics query for a poll of N new incidents, through the production classes
(SentinelClient, LogAnalyticsClient, SentinelEnricher) against the emulators in another process over HTTPS; ARM
throttling off. Log Analytics latency {p["la_latency"]:g} s per query, enrichment budget {p["budget"]:g} s,
{p["rounds"]} rounds per size; p50/p95 of the whole enrichment of the poll.

{render(obj["runs"])}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--la-latency", type=float, default=0.0,
                        help="seconds the emulated Log Analytics takes per query")
    parser.add_argument("--budget", type=float, default=10.0, help="enrichment budget in seconds")
    add_output_arguments(parser)
    args = parser.parse_args()
    # The per-call "enrichment_done" lines (and, in the budget run, the expected warnings) would drown the table.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    if args.serve is not None:
        serve(args.serve, max(args.sizes))
        return
    saved = saved_report(args)
    if saved is not None:
        publish("enrichment", saved, doc_section, args)
        return
    host = machine()
    with tempfile.TemporaryDirectory() as directory:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", directory, "--sizes", *map(str, args.sizes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            assert child.stdout is not None
            info = json.loads(child.stdout.readline())
            results = asyncio.run(measure(info, args.sizes, args.rounds, args.la_latency, args.budget))
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=30)
    largest = results[-1]
    obj = report("enrichment", host, vars(args), p50_s=largest["p50_s"], p95_s=largest["p95_s"],
                 errors=sum(r["failures"] for r in results), runs=results)
    publish("enrichment", obj, doc_section, args, text=render(results))


if __name__ == "__main__":
    main()
