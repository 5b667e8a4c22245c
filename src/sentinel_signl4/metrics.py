"""Prometheus metrics. One registry per process (tests make their own); labels never carry secrets. Under
``run --workers N`` the parent's exposition adds the workers' series (``worker_metrics``)."""

from __future__ import annotations

import platform
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from sentinel_signl4 import __version__
from sentinel_signl4.engine.health import UP_STATES, ConnectorHealth, HealthState
from sentinel_signl4.worker_metrics import WorkersCollector

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._workers: WorkersCollector | None = None
        r = self.registry
        self.build_info = Info("s4s_build", "The running version of sentinel-signl4 and of Python.", registry=r)
        self.build_info.info({"version": __version__, "python": platform.python_version()})
        self.incidents_seen = Counter("s4s_incidents_seen_total", "Incidents returned by polls.",
                                      ["connector"], registry=r)
        self.incidents_forwarded = Counter("s4s_incidents_forwarded_total",
                                           "Incidents queued to be raised as a Signl.", ["connector"], registry=r)
        self.incidents_skipped = Counter("s4s_incidents_skipped_total", "Incidents not forwarded, by reason.",
                                         ["connector", "reason"], registry=r)
        self.signls_raised = Counter("s4s_signls_raised_total", "Signls SIGNL4 confirmed (201).",
                                     ["connector"], registry=r)
        self.actions = Counter(
            "s4s_actions_total",
            "Side effects (raise_signl, tag_incident, update_incident, add_comment, …) by outcome: "
            "done, retry (failed, rescheduled), dead (given up) or paced (put off, not attempted: the source's "
            "write budget had no room yet).",
            ["connector", "kind", "outcome"], registry=r)
        self.remote_retries = Counter("s4s_remote_retries_total", "Retries of remote calls.",
                                      ["service"], registry=r)
        self.throttled = Counter("s4s_throttled_total", "429 answers received.", ["service"], registry=r)
        self.signl_fallbacks = Counter("s4s_signl_fallbacks_total", "Signls SIGNL4 rejected (400/413) and sent again in minimal form.", ["connector"], registry=r)  # noqa: E501
        self.page_latency = Histogram("s4s_page_latency_seconds",
                                      "Incident creation in Sentinel to Signl confirmed by SIGNL4.",
                                      ["connector"], buckets=_LATENCY_BUCKETS, registry=r)
        self.sync_latency = Histogram("s4s_reverse_sync_latency_seconds",
                                      "SIGNL4 event raised to Sentinel updated.", ["connector"],
                                      buckets=_LATENCY_BUCKETS, registry=r)
        self.connector_up = Gauge("s4s_connector_up",
                                  "1 while the connector does its work (state ok or degraded), else 0.",
                                  ["connector"], registry=r)
        self.connector_state = Gauge("s4s_connector_state",
                                     "1 for the connector's current state (starting, ok, degraded, error, standby), "
                                     "0 for the others.", ["connector", "state"], registry=r)
        self.last_success = Gauge("s4s_connector_last_success_timestamp_seconds",
                                  "Unix time of the connector's last cycle without any failure.",
                                  ["connector"], registry=r)
        self.oldest_pending_age = Gauge("s4s_oldest_pending_page_age_seconds",
                                        "Age of the oldest page (raise_signl row) not yet sent; 0 when none.",
                                        ["connector"], registry=r)
        self.dead_letters = Gauge("s4s_dead_letters", "Pages (raise_signl rows) dead-lettered and not yet acted on.",
                                  ["connector"], registry=r)
        self.inbox_unmatched = Counter("s4s_inbox_unmatched_total", "SIGNL4 events given up (dead) because no Signl of the connector matched their ExternalID in time.", ["connector"], registry=r)  # noqa: E501
        # Set by the connector's cycles only: under --workers, the value its live worker set last.
        self.outbox_pending = Gauge("s4s_outbox_pending", "Outbox rows not yet done.", ["connector"], registry=r,
                                    multiprocess_mode="livemostrecent")
        # connector is "-" for requests that named no configured connector: URL paths are attacker-chosen and
        # must not create label values (one time series each).
        self.webhook_events = Counter("s4s_webhook_events_total",
                                      "SIGNL4 outbound-webhook requests by outcome (accepted, duplicate, ignored, "
                                      "or the reason they were rejected).", ["connector", "outcome"], registry=r)

    def on_retry(self, service: str, status: int | None) -> None:
        self.remote_retries.labels(service).inc()
        if status == 429:
            self.throttled.labels(service).inc()

    def publish_health(self, health: ConnectorHealth, now: datetime | None = None) -> None:
        """Mirror one connector's health into the gauges (on every health update, and on scrape with ``now`` so
        that the pending age is current)."""
        name = health.connector
        for state in HealthState:
            if state is not HealthState.DISABLED:
                self.connector_state.labels(name, state.value).set(1 if health.state is state else 0)
        self.connector_up.labels(name).set(1 if health.state in UP_STATES else 0)
        if health.last_success_at is not None:
            self.last_success.labels(name).set(health.last_success_at.timestamp())
        at = now or health.last_cycle_at or health.since
        age = health.oldest_pending_age(at) if at is not None else None
        self.oldest_pending_age.labels(name).set(age or 0.0)
        self.dead_letters.labels(name).set(health.dead_letters)

    def include_workers(self, directory: Path) -> None:
        """Expose the series of the worker processes that write their metrics to ``directory`` with this
        registry's own (``run --workers N``: the workers run the connectors, this process serves ``/metrics``)."""
        self._workers = WorkersCollector(self.registry, directory)

    def exposition(self) -> bytes:
        return generate_latest(self._workers or self.registry)
