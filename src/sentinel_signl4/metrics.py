"""Prometheus metrics. One registry per process (tests make their own); labels never carry secrets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
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
            "done, retry (failed, rescheduled) or dead (given up).",
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
        self.connector_up = Gauge("s4s_connector_up", "1 when the connector's last cycle succeeded.",
                                  ["connector"], registry=r)
        self.inbox_unmatched = Counter("s4s_inbox_unmatched_total", "SIGNL4 events given up (dead) because no Signl of the connector matched their ExternalID in time.", ["connector"], registry=r)  # noqa: E501
        self.outbox_pending = Gauge("s4s_outbox_pending", "Outbox rows not yet done.", ["connector"], registry=r)
        # connector is "-" for requests that named no configured connector: URL paths are attacker-chosen and
        # must not create label values (one time series each).
        self.webhook_events = Counter("s4s_webhook_events_total",
                                      "SIGNL4 outbound-webhook requests by outcome (accepted, duplicate, ignored, "
                                      "or the reason they were rejected).", ["connector", "outcome"], registry=r)

    def on_retry(self, service: str, status: int | None) -> None:
        self.remote_retries.labels(service).inc()
        if status == 429:
            self.throttled.labels(service).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
