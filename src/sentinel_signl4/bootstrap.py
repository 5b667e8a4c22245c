"""The composition root: the one place that builds concrete clients, stores and runtimes from a ``Config``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from sentinel_signl4.clients.graph import GraphClient, graph_limiter
from sentinel_signl4.clients.http import build_http_client
from sentinel_signl4.clients.identity import TokenProvider, build_credential
from sentinel_signl4.clients.loganalytics import LogAnalyticsClient, build_query_client, query_gate_for
from sentinel_signl4.clients.ratelimit import limiter_for
from sentinel_signl4.clients.retry import RetryPolicy
from sentinel_signl4.clients.sentinel import SentinelClient
from sentinel_signl4.clients.sentinel_budget import SentinelBudget, SentinelLimits, sentinel_budget_for
from sentinel_signl4.clients.signl4 import Signl4Client
from sentinel_signl4.config import Config, ConnectorConfig, CredentialConfig, SyncConfig
from sentinel_signl4.config.sentinel_limits import SentinelLimitsConfig
from sentinel_signl4.domain import IncidentFilter
from sentinel_signl4.domain.incident_change import OwnerRef
from sentinel_signl4.domain.render import RenderContext
from sentinel_signl4.domain.signl_options import PresentationOptions
from sentinel_signl4.domain.sync import ClassificationChoice
from sentinel_signl4.engine.connector import ConnectorRuntime
from sentinel_signl4.engine.credential_expiry import CredentialExpiry, credential_expiry
from sentinel_signl4.engine.enrich import EnrichmentSettings, SentinelEnricher
from sentinel_signl4.engine.forward import ForwardPath
from sentinel_signl4.engine.instances import InstanceRegistry
from sentinel_signl4.engine.leases import replica_id
from sentinel_signl4.engine.owners import OwnerDirectory, UserLookup
from sentinel_signl4.engine.pacing import WritePacer
from sentinel_signl4.engine.reverse import ReversePath, ReverseSettings
from sentinel_signl4.engine.signl4_poll import Signl4Poller
from sentinel_signl4.engine.supervisor import ScheduledConnector, Supervisor
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.sources.graph import GraphSource
from sentinel_signl4.sources.pager import Signl4Pager
from sentinel_signl4.sources.sentinel import SentinelSource
from sentinel_signl4.sources.signl4_changes import Signl4ChangeFeed
from sentinel_signl4.store import StateStore
from sentinel_signl4.store.factory import open_store, sqlite_file

__all__ = ["LiveView", "Runtime", "build_connector", "build_runtime", "instance_directory", "utcnow"]

T = TypeVar("T")


# Every request of a connector (README, "The one documented duplicate window": at most 15 s). The clients set their
# timeout per request, which overrides the shared client's default, so they are given this one explicitly.
REQUEST_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ConnectorParts:
    """One connector's runtime and the adapters it was built from (``check`` and tests look at them).

    ``sentinel`` is set for ``source = "sentinel"``; ``graph`` for ``source = "graph"`` and for the owner lookup.
    """

    config: ConnectorConfig
    runtime: ConnectorRuntime
    source: SentinelSource | GraphSource
    pager: Signl4Pager
    sentinel: SentinelClient | None
    signl4: Signl4Client
    tokens: TokenProvider
    graph: GraphClient | None = None
    #: What to close when this connector alone is dropped (a reload); empty for those of the first build, whose
    #: credentials are shared between connectors and closed with the runtime.
    closers: list[Any] = field(default_factory=list)


class LiveView(Mapping[str, T]):
    """A read-only mapping over the runtime's connectors as they are now (after reloads too): ``pick`` gives each
    connector's value, None to leave it out."""

    def __init__(self, runtime: Runtime, pick: Callable[[ConnectorParts], T | None]) -> None:
        self._runtime = runtime
        self._pick = pick

    def _now(self) -> dict[str, T]:
        picked = {name: self._pick(parts) for name, parts in self._runtime.connectors.items()}
        return {name: value for name, value in picked.items() if value is not None}

    def __getitem__(self, name: str) -> T:
        return self._now()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._now())

    def __len__(self) -> int:
        return len(self._now())


@dataclass
class Runtime:
    """Everything ``run`` needs, with one ``aclose`` that releases it all."""

    config: Config
    store: StateStore
    http: httpx.AsyncClient
    metrics: Metrics
    connectors: dict[str, ConnectorParts]
    clock: Callable[[], datetime] = utcnow
    _closers: list[Any] = field(default_factory=list)
    #: Clients shared by the connectors of the first build (closed with the runtime), by what they depend on.
    _shared_clients: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def supervisor(self, **kwargs: Any) -> Supervisor:
        """A supervisor for the enabled connectors. Unless an ``owner`` is given, it runs as a new replica registered
        in the store's instance directory (released by ``aclose``), so its leases can be taken over at once after
        it dies, and it can take over those of dead replicas of this host."""
        scheduled = [ScheduledConnector(p.runtime, p.config.poll_interval.total_seconds())
                     for p in self.connectors.values() if p.config.enabled]
        directory = instance_directory(self.config)
        if directory is not None and "owner" not in kwargs and "instance" not in kwargs:
            registry = InstanceRegistry(directory)
            registration = registry.register(replica_id())
            self._closers.append(_async(registration.close))
            longest_ttl = max((kwargs.get("lease_ttl") or max(60.0, 3 * s.interval) for s in scheduled), default=60.0)
            registry.sweep(idle_for=max(3600.0, 2 * longest_ttl))
            kwargs["instance"] = registration
        return Supervisor(scheduled, self.store, clock=self.clock, **kwargs)

    def scheduled(self, name: str) -> ScheduledConnector:
        """``name``'s runtime as the supervisor runs it."""
        parts = self.connectors[name]
        return ScheduledConnector(parts.runtime, parts.config.poll_interval.total_seconds())

    def build_alone(self, cfg: ConnectorConfig, config: Config) -> ConnectorParts:
        """Build ``cfg`` afresh with a credential and clients of its own (a reload), closed by ``drop_connector``;
        the caller puts it into ``connectors``."""
        return build_connector(cfg, config, self, {}, closers=[])

    async def drop_connector(self, parts: ConnectorParts) -> None:
        """Close what only ``parts`` used, and forget it unless another connector of its name replaced it."""
        if self.connectors.get(parts.config.name) is parts:
            del self.connectors[parts.config.name]
        for closer in reversed(parts.closers):
            with contextlib.suppress(Exception):
                await closer()

    async def aclose(self) -> None:
        for parts in self.connectors.values():
            for closer in reversed(parts.closers):
                with contextlib.suppress(Exception):
                    await closer()
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer()
        await self.http.aclose()
        await self.store.close()


def instance_directory(config: Config) -> Path | None:
    """Where this store's replicas register (``[store] state_dir``, else ``<sqlite file>.replicas``; None for
    PostgreSQL without a ``state_dir``)."""
    if config.store.state_dir:
        return Path(config.store.state_dir).resolve()
    path = sqlite_file(config.store.url)
    return None if path is None else Path(f"{path}.replicas")


def _async(close: Callable[[], None]) -> Callable[[], Any]:
    async def closer() -> None:
        close()
    return closer


async def build_runtime(config: Config, *, transport: httpx.AsyncBaseTransport | None = None,
                        clock: Callable[[], datetime] = utcnow, metrics: Metrics | None = None,
                        store: StateStore | None = None, migrate: bool = True) -> Runtime:
    metrics = metrics or Metrics()
    if store is None:
        store = open_store(config.store.url)
    if migrate:
        await store.migrate()
    http = build_http_client(ca_bundle=config.tls.ca_bundle, timeout=REQUEST_TIMEOUT,
                             transport=transport)
    runtime = Runtime(config=config, store=store, http=http, metrics=metrics, connectors={}, clock=clock)
    credentials: dict[tuple[str, ...], TokenProvider] = {}
    for cfg in config.connectors:
        runtime.connectors[cfg.name] = build_connector(cfg, config, runtime, credentials)
    return runtime


def build_connector(cfg: ConnectorConfig, config: Config, runtime: Runtime,
                    credentials: dict[tuple[str, ...], TokenProvider], *,
                    closers: list[Any] | None = None) -> ConnectorParts:
    """``cfg``'s runtime and adapters. What must be closed goes to ``closers`` (then kept on the parts, for a
    connector rebuilt alone), else to the runtime's (credentials shared between connectors)."""
    sink = runtime._closers if closers is None else closers
    az = cfg.azure
    endpoints = az.resolved_endpoints
    cred = az.credential
    cred_key = (az.tenant_id, cred.kind, cred.client_id or "", endpoints.authority_host)
    tokens = credentials.get(cred_key)
    if tokens is None:
        credential = build_credential(
            kind=cred.kind, tenant_id=az.tenant_id, client_id=cred.client_id,
            secret=cred.client_secret.get_secret_value() if cred.client_secret else None,
            cert_path=cred.certificate_path,
            cert_password=cred.certificate_password.get_secret_value() if cred.certificate_password else None,
            token_file=cred.token_file, authority_host=endpoints.authority_host, ca_bundle=config.tls.ca_bundle,
        )
        tokens = TokenProvider(credential, secrets=(
            cred.client_secret.get_secret_value() if cred.client_secret else None,
            cred.certificate_password.get_secret_value() if cred.certificate_password else None))
        credentials[cred_key] = tokens
        sink.append(credential.close)
    metrics = runtime.metrics

    def on_retry_for(service: str) -> Callable[[Any, float], None]:
        return lambda exc, _delay: metrics.on_retry(service, getattr(exc, "status", None))

    graph = _graph_client(cfg, runtime, tokens, on_retry_for("graph"))
    sentinel: SentinelClient | None = None
    source: SentinelSource | GraphSource
    if cfg.source == "graph":
        assert graph is not None
        source = GraphSource(graph, tenant_id=az.tenant_id, resource=cfg.graph.resource)
    else:
        sentinel = SentinelClient(
            runtime.http, tokens, arm_endpoint=endpoints.resource_manager,
            arm_scope=endpoints.scope("resource_manager"), subscription_id=az.subscription_id,
            resource_group=az.resource_group, workspace_name=az.workspace_name, api_version=az.api_version,
            retry=RetryPolicy(), on_retry=on_retry_for("sentinel"), timeout=REQUEST_TIMEOUT,
        )
        sentinel.budget = sentinel_budget_for(sentinel.workspace_resource_id, sentinel_limits(az.limits))
        source = SentinelSource(sentinel, page_size=az.page_size)
    s4 = cfg.signl4
    signl4 = Signl4Client(
        runtime.http, webhook_url=s4.webhook_url.get_secret_value(), api_url=s4.api_url,
        api_key=s4.api_key.get_secret_value() if s4.api_key else None,
        limiter=limiter_for(s4.subscription), send_via=s4.send_via, retry=RetryPolicy(),
        on_retry=on_retry_for("signl4"), api_user_id=s4.api_user or None, timeout=REQUEST_TIMEOUT,
    )
    pager = Signl4Pager(signl4, has_api_key=s4.api_key is not None)
    render = RenderContext(connector=cfg.name, display_name=cfg.display_name, service=s4.service,
                           presentation=_presentation(cfg))
    forward = ForwardPath(
        cfg.name, source=source, pager=pager, store=runtime.store,
        flt=IncidentFilter(statuses=frozenset(cfg.filter.statuses), severities=frozenset(cfg.filter.severities),
                           max_age=cfg.filter.max_age),
        render=render, tag=cfg.sync.tag, skip_already_tagged=cfg.sync.skip_already_tagged, metrics=metrics,
        # Enrichment reads Sentinel (alerts, entities) and the workspace's Log Analytics: Sentinel connectors only.
        enricher=_enricher(cfg, config, sink, tokens, sentinel, on_retry_for("loganalytics"),
                           runtime._shared_clients if closers is None else None) if sentinel else None,
    )
    sync = cfg.sync
    reverse = None
    mode = cfg.sync_mode
    if mode != "off" or sync.resolve_signl_on_close or sync.reraise_on_reopen:
        reverse = ReversePath(
            cfg.name, source=source, pager=pager, store=runtime.store, sync=reverse_settings(sync),
            owners=OwnerDirectory(sync.owner_map, _owner_lookup(graph) if sync.assign_owner_on else None),
            render=render, metrics=metrics,
            max_age=cfg.filter.max_age, tag=cfg.sync.tag or None,
        )
    poller = None
    if mode in ("poll", "both"):
        poller = Signl4Poller(cfg.name, changes=Signl4ChangeFeed(signl4), store=runtime.store,
                              interval=sync.poll_signl4_interval)
    rt = ConnectorRuntime(cfg.name, store=runtime.store, forward=forward, metrics=metrics, reverse=reverse,
                          signl4_poller=poller, reconcile_every=sync.reconcile_interval,
                          retention=config.store.retention, stuck_after=config.stuck_after(cfg),
                          credential_expiry=lambda: _credential_expiry(cred),
                          pacer=_pacer(sentinel.budget) if sentinel is not None and sentinel.budget else None,
                          full_scan_interval=cfg.full_scan_interval)
    return ConnectorParts(config=cfg, runtime=rt, source=source, pager=pager, sentinel=sentinel,
                          signl4=signl4, tokens=tokens, graph=graph, closers=[] if closers is None else closers)


def sentinel_limits(limits: SentinelLimitsConfig) -> SentinelLimits:
    """The plain budget figures of ``[connectors.azure.limits]``."""
    return SentinelLimits(incident_writes=limits.incident_writes, comment_writes=limits.comment_writes,
                          enrichment_calls=limits.enrichment_calls, window=limits.window.total_seconds(),
                          reverse_reserve=limits.reverse_reserve)


def _pacer(budget: SentinelBudget) -> WritePacer:
    """Paces a connector's outbox writes within its workspace's (shared) budget."""
    return WritePacer(budget.incidents, budget.comments, reserve=budget.limits.reverse_reserve)


def reverse_settings(sync: SyncConfig) -> ReverseSettings:
    """The plain values the reverse path takes from ``[connectors.sync]``."""
    return ReverseSettings(
        close_choice=ClassificationChoice(sync.close_classification, sync.close_classification_reason),
        assign_owner_on=frozenset(sync.assign_owner_on), comment_on_escalation=sync.comment_on_escalation,
        resolve_signl_on_close=sync.resolve_signl_on_close, reraise_on_reopen=sync.reraise_on_reopen,
        unmatched_event_limit=sync.unmatched_event_limit)


def _credential_expiry(cred: CredentialConfig) -> CredentialExpiry | None:
    return credential_expiry(
        secret_expires=cred.expires,
        certificate_path=cred.certificate_path if cred.kind == "certificate" else None,
        certificate_password=cred.certificate_password.get_secret_value() if cred.certificate_password else None)


def _graph_client(cfg: ConnectorConfig, runtime: Runtime, tokens: TokenProvider,
                  on_retry: Callable[[Any, float], None]) -> GraphClient | None:
    """The connector's Graph client: its incident source (``source = "graph"``) and/or the owner lookup.

    Every connector of a tenant shares one request budget (``graph_limiter``): Graph allows 150 security requests
    per minute per app and tenant, whatever the number of connectors.
    """
    if cfg.source != "graph" and not cfg.sync.assign_owner_on:
        return None
    endpoints = cfg.azure.resolved_endpoints
    return GraphClient(
        runtime.http, tokens, graph_endpoint=endpoints.graph, graph_scope=endpoints.scope("graph"),
        retry=RetryPolicy() if cfg.source == "graph" else RetryPolicy(attempts=3, total_timeout=20.0),
        on_retry=on_retry, limiter=graph_limiter(cfg.azure.tenant_id, limit=cfg.graph.requests_per_minute),
        page_size=cfg.graph.page_size, timeout=REQUEST_TIMEOUT,
    )


def _owner_lookup(graph: GraphClient | None) -> UserLookup | None:
    """Resolve a SIGNL4 responder's e-mail through Graph (``GET /users/{upn}``, then ``$filter=mail eq``)."""
    if graph is None:
        return None

    async def lookup(mail: str) -> OwnerRef | None:
        user = await graph.get_user(mail) or await graph.find_user_by_mail(mail)
        if user is None:
            return None
        return OwnerRef(object_id=user.id, upn=user.user_principal_name, email=user.mail)

    return lookup


# -- enrichment and presentation (issue #4) -------------------------------------------------------------------------

def _presentation(cfg: ConnectorConfig) -> PresentationOptions:
    """Render options: the configured presentation, with the Log Analytics columns shown in their configured order."""
    return cfg.presentation.to_options(tenant_id=cfg.azure.tenant_id, row_columns=cfg.enrichment.columns)


def _enricher(cfg: ConnectorConfig, config: Config, closers: list[Any], tokens: TokenProvider,
              sentinel: SentinelClient, on_retry: Callable[[Any, float], None],
              shared: dict[tuple[Any, ...], Any] | None) -> SentinelEnricher | None:
    """Alerts, entities and one Log Analytics query per poll, when the workspace GUID is configured."""
    az, settings = cfg.azure, cfg.enrichment
    if not (az.workspace_id and settings.enabled):
        return None
    endpoints = az.resolved_endpoints
    budget = settings.budget.total_seconds()
    principal = f"{endpoints.log_analytics}|{az.tenant_id}|{az.credential.client_id or az.credential.kind}"
    # Connectors of one credential share one query client (its pipeline and connection pool: most of what a
    # connector costs in memory otherwise); one rebuilt alone by a reload (``shared`` None) gets its own.
    key = (id(tokens), endpoints.log_analytics, endpoints.log_analytics_audience, budget)
    query_client = shared.get(key) if shared is not None else None
    if shared is not None and query_client is None:
        query_client = shared[key] = build_query_client(
            tokens, endpoint=endpoints.log_analytics, audience=endpoints.log_analytics_audience,
            ca_bundle=config.tls.ca_bundle, timeout=budget)
        closers.append(query_client.close)
    logs = LogAnalyticsClient(
        tokens, workspace_id=az.workspace_id, endpoint=endpoints.log_analytics,
        audience=endpoints.log_analytics_audience, ca_bundle=config.tls.ca_bundle,
        # The service's limits are per principal: connectors sharing a credential share one gate.
        gate=query_gate_for(principal),
        retry=RetryPolicy(attempts=2, total_timeout=budget), on_retry=on_retry, timeout=budget,
        query_client=query_client,
    )
    closers.append(logs.close)
    return SentinelEnricher(cfg.name, sentinel=sentinel, logs=logs, settings=EnrichmentSettings(
        query=settings.query, columns=settings.columns, alerts=settings.alerts, entities=settings.entities,
        timespan=settings.timespan, max_rows=settings.max_rows, budget=budget, concurrency=settings.concurrency,
    ))
