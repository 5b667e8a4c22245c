"""Prometheus metrics. One registry per process (tests make their own); labels never carry secrets. Under
``run --workers N`` the parent's exposition adds the workers' series (``worker_metrics``)."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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
        # s4s_connector_up, _state, _last_success_timestamp_seconds, s4s_oldest_pending_page_age_seconds and
        # s4s_dead_letters are read from each connector's health when scraped (``HealthCollector``).
        self.health = HealthCollector(r)
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
        """Show ``health`` in the health gauges from now on (on every health update; ``now``, given on scrape, makes
        the pending age current)."""
        self.health.show(health, now)

    def include_workers(self, directory: Path) -> None:
        """Expose the series of the worker processes that write their metrics to ``directory`` with this
        registry's own (``run --workers N``: the workers run the connectors, this process serves ``/metrics``)."""
        self._workers = WorkersCollector(self.registry, directory)

    def exposition(self) -> bytes:
        return generate_latest(self._workers or self.registry)


class HealthCollector(Collector):
    """The per-connector health gauges, made from the ``ConnectorHealth`` objects at each collection.

    Gauge children cost about 6 KiB per connector (five series, the state one per state, each with its value
    object and lock); a thousand connectors kept 6 MiB of them only to be read at a scrape. The values are the
    health's own fields, so nothing is copied between scrapes. A connector is shown once its health was first
    published (a disabled one, built but never run, has no series).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._shown: dict[str, ConnectorHealth] = {}
        self._now: dict[str, datetime] = {}
        registry.register(self)

    def show(self, health: ConnectorHealth, now: datetime | None = None) -> None:
        self._shown[health.connector] = health
        if now is not None:
            self._now[health.connector] = now
        else:
            self._now.pop(health.connector, None)

    def describe(self) -> list[Metric]:
        return []  # no fixed samples: the families are built from the live healths in ``collect``

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("s4s_connector_up", "1 while the connector does its work (state ok or degraded), "
                               "else 0.", labels=["connector"])
        state = GaugeMetricFamily("s4s_connector_state", "1 for the connector's current state (starting, ok, "
                                  "degraded, error, standby), 0 for the others.", labels=["connector", "state"])
        success = GaugeMetricFamily("s4s_connector_last_success_timestamp_seconds",
                                    "Unix time of the connector's last cycle without any failure.",
                                    labels=["connector"])
        pending = GaugeMetricFamily("s4s_oldest_pending_page_age_seconds",
                                    "Age of the oldest page (raise_signl row) not yet sent; 0 when none.",
                                    labels=["connector"])
        dead = GaugeMetricFamily("s4s_dead_letters", "Pages (raise_signl rows) dead-lettered and not yet acted on.",
                                 labels=["connector"])
        for name, health in list(self._shown.items()):
            current = health.state
            for each in HealthState:
                if each is not HealthState.DISABLED:
                    state.add_metric([name, each.value], 1.0 if current is each else 0.0)
            up.add_metric([name], 1.0 if current in UP_STATES else 0.0)
            if health.last_success_at is not None:
                success.add_metric([name], health.last_success_at.timestamp())
            at = self._now.get(name) or health.last_cycle_at or health.since
            age = health.oldest_pending_age(at) if at is not None else None
            pending.add_metric([name], age or 0.0)
            dead.add_metric([name], float(health.dead_letters))
        yield from (up, state, success, pending, dead)
