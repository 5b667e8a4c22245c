"""Evidence for the incidents of one poll: their alerts and entities (Sentinel) and related rows (Log Analytics).

The :class:`~sentinel_signl4.engine.ports.Enricher` the forward path calls once per poll. Call economy: for N
new incidents, at most N ``POST …/alerts`` and N ``POST …/entities`` (bounded concurrency) and **one** Log
Analytics query for the whole batch — never one per incident. The query is the configured KQL template with
``{system_alert_ids}`` (the alerts just fetched), ``{incident_names}``, ``{columns}`` and ``{max_rows}`` filled
in; it needs the alert ids only when it names them, otherwise it starts at once, alongside the Sentinel calls.

Enrichment is best effort and bounded: the whole call returns within ``budget`` seconds whatever the remote
side does. What could not be fetched — an error, a 429, a partial result, a timeout — becomes a short note
on the incident's Signl ("Log Analytics unavailable: no answer within 10 s"), and the page goes out anyway.
A page is never held back for evidence.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from sentinel_signl4.domain.incident import Incident
from sentinel_signl4.domain.kql import LogRows, kql_string
from sentinel_signl4.domain.render import Enrichment
from sentinel_signl4.errors import (
    BUDGET_SPENT,
    AuthError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RemoteError,
)

__all__ = [
    "CORRELATION_COLUMNS",
    "AlertEntitySource",
    "EnrichmentReport",
    "EnrichmentSettings",
    "LogQuerySource",
    "SentinelEnricher",
    "build_query",
]

log = structlog.get_logger("sentinel_signl4.enrich")

#: Columns that tie a row to an incident; always selected by the default query, never shown as evidence.
CORRELATION_COLUMNS = ("SystemAlertId", "IncidentName")

#: Rows kept per incident; the presentation shows the top few, the rest only count ("… and 12 more rows").
MAX_ROWS_PER_INCIDENT = 50

_PLACEHOLDER = re.compile(r"\{(system_alert_ids|incident_names|columns|max_rows)\}")


class AlertEntitySource(Protocol):
    """Where an incident's alerts and entities come from (``SentinelClient``)."""

    async def list_alerts(self, incident_name: str) -> list[dict[str, Any]]: ...

    async def list_entities(self, incident_name: str) -> dict[str, Any]: ...


class LogQuerySource(Protocol):
    """Where Log Analytics rows come from (``LogAnalyticsClient``)."""

    async def query(self, kql: str, *, start: datetime, end: datetime,
                    server_timeout: int | None = None) -> LogRows: ...

    async def check_access(self) -> None:
        """Raise a ``RemoteError`` saying what to fix when the workspace cannot be queried."""
        ...


@dataclass(frozen=True, slots=True)
class EnrichmentSettings:
    """What to fetch, how, and within which budget (built from ``EnrichmentConfig`` by the composition root)."""

    query: str
    columns: tuple[str, ...]
    alerts: bool = True
    entities: bool = True
    timespan: timedelta = timedelta(days=2)
    max_rows: int = 1000
    budget: float = 10.0
    concurrency: int = 4

    @property
    def query_needs_alert_ids(self) -> bool:
        return "{system_alert_ids}" in self.query


@dataclass(slots=True)
class EnrichmentReport:
    """What one :meth:`SentinelEnricher.enrich` call did: remote calls made, failures, time taken."""

    incidents: int = 0
    alert_calls: int = 0
    entity_calls: int = 0
    queries: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Alerts/entities calls not made because the workspace's tracked budget was spent (logged once per poll).
    budget_spent: int = 0

    @property
    def remote_calls(self) -> int:
        return self.alert_calls + self.entity_calls + self.queries


def build_query(template: str, *, system_alert_ids: Iterable[str] = (), incident_names: Iterable[str] = (),
                columns: Iterable[str] = (), max_rows: int = 1000) -> str:
    """The KQL template with its placeholders filled in; ids become escaped string literals.

    ``{columns}`` never repeats a correlation column (the default query projects ``SystemAlertId`` itself, and
    Kusto rejects a column projected twice).
    """
    values = {
        "system_alert_ids": ", ".join(kql_string(value) for value in system_alert_ids),
        "incident_names": ", ".join(kql_string(value) for value in incident_names),
        "columns": ", ".join(c for c in columns if c not in CORRELATION_COLUMNS),
        "max_rows": str(max_rows),
    }
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _reason(error: BaseException) -> str:
    """A few words for the phone; the full error goes to the log."""
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "no answer in time"
    if isinstance(error, RateLimitedError):
        return "throttled (HTTP 429)"
    if isinstance(error, AuthError):
        return f"access denied (HTTP {error.status})" if error.status else "access denied"
    if isinstance(error, NotFoundError):
        return "not found (HTTP 404)"
    if isinstance(error, PermanentError) and error.status == 400:
        return "query rejected (HTTP 400)"
    if isinstance(error, RemoteError) and error.status:
        return f"service error (HTTP {error.status})"
    if isinstance(error, RemoteError):
        return "network error"
    return "internal error"


@dataclass(slots=True)
class _Evidence:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def frozen(self) -> Enrichment:
        return Enrichment(tuple(self.alerts), tuple(self.entities), tuple(self.rows), tuple(self.notes))


class SentinelEnricher:
    """The :class:`~sentinel_signl4.engine.ports.Enricher` over Sentinel (alerts, entities) and Log Analytics.

    ``logs`` is ``None`` when the connector has no workspace GUID: then only Sentinel is asked.
    ``monotonic`` is the clock for the budget (a parameter so benchmarks can measure what tests must not).
    """

    def __init__(self, connector: str, *, sentinel: AlertEntitySource, logs: LogQuerySource | None,
                 settings: EnrichmentSettings, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.connector = connector
        self.sentinel = sentinel
        self.logs = logs
        self.settings = settings
        self._monotonic = monotonic
        self.last_report = EnrichmentReport()

    def __repr__(self) -> str:
        return f"SentinelEnricher({self.connector!r}, logs={self.logs is not None})"

    async def enrich(self, incidents: list[Incident], now: datetime) -> dict[str, Enrichment]:
        """Evidence per incident resource id, within the budget. Never raises: pages go out regardless."""
        try:
            return await self._enrich(incidents, now)
        except Exception:  # a bug here must cost the evidence, never the page
            log.exception("enrichment_crashed", connector=self.connector, incidents=len(incidents))
            note = ("enrichment unavailable: internal error",)
            return {incident.resource_id: Enrichment(notes=note) for incident in incidents}

    async def _enrich(self, incidents: list[Incident], now: datetime) -> dict[str, Enrichment]:
        started = self._monotonic()
        report = EnrichmentReport(incidents=len(incidents))
        self.last_report = report
        evidence = {incident.resource_id: _Evidence() for incident in incidents}
        if not incidents:
            return {}
        deadline = started + self.settings.budget
        query_task: asyncio.Task[LogRows] | None = None
        if self.logs is not None and not self.settings.query_needs_alert_ids:
            query_task = self._start_query(incidents, [], now, deadline, report)
        await self._fetch_sentinel(incidents, evidence, deadline, report)
        if self.logs is not None and self.settings.query_needs_alert_ids:
            alert_ids = [_alert_id(alert) for e in evidence.values() for alert in e.alerts if _alert_id(alert)]
            if alert_ids:
                query_task = self._start_query(incidents, alert_ids, now, deadline, report)
        if query_task is not None:
            await self._collect_rows(query_task, incidents, evidence, deadline, report)
        report.seconds = self._monotonic() - started
        if report.budget_spent:
            log.warning("enrichment_budget_spent", connector=self.connector, calls_not_made=report.budget_spent,
                        reason="the workspace's alerts/entities budget is spent; those Signls go out without it")
        log.info("enrichment_done", connector=self.connector, incidents=len(incidents),
                 alert_calls=report.alert_calls, entity_calls=report.entity_calls, queries=report.queries,
                 failures=len(report.failures), seconds=round(report.seconds, 3))
        return {resource_id: e.frozen() for resource_id, e in evidence.items()}

    def _remaining(self, deadline: float) -> float:
        return max(0.0, deadline - self._monotonic())

    # -- Sentinel: alerts and entities, per incident, bounded concurrency ----------------------------------------

    async def _fetch_sentinel(self, incidents: list[Incident], evidence: dict[str, _Evidence], deadline: float,
                              report: EnrichmentReport) -> None:
        semaphore = asyncio.Semaphore(self.settings.concurrency)
        jobs: dict[asyncio.Task[Any], tuple[Incident, str]] = {}

        def start(incident: Incident, what: str, call: Callable[[], Awaitable[Any]]) -> None:
            async def guarded() -> Any:
                async with semaphore:
                    if what == "alerts":
                        report.alert_calls += 1
                    else:
                        report.entity_calls += 1
                    return await call()
            jobs[asyncio.create_task(guarded())] = (incident, what)

        for incident in incidents:
            if self.settings.alerts:
                start(incident, "alerts", functools.partial(self.sentinel.list_alerts, incident.name))
            if self.settings.entities:
                start(incident, "entities", functools.partial(self.sentinel.list_entities, incident.name))
        if not jobs:
            return
        _done, pending = await asyncio.wait(jobs, timeout=self._remaining(deadline))
        await _cancel(pending)
        for task, (incident, what) in jobs.items():
            target = evidence[incident.resource_id]
            error = TimeoutError() if task in pending else task.exception()
            if error is not None:
                self._note(target, report, incident, what, error)
                continue
            result = task.result()
            if what == "alerts":
                target.alerts = [a for a in result if isinstance(a, dict)]
            else:
                entities = result.get("entities") if isinstance(result, dict) else None
                target.entities = [e for e in entities or [] if isinstance(e, dict)]

    # -- Log Analytics: one query for the batch --------------------------------------------------------------------

    def _start_query(self, incidents: list[Incident], alert_ids: list[str], now: datetime, deadline: float,
                     report: EnrichmentReport) -> asyncio.Task[LogRows]:
        assert self.logs is not None
        settings = self.settings
        kql = build_query(settings.query, system_alert_ids=dict.fromkeys(alert_ids),
                          incident_names=[incident.name for incident in incidents], columns=settings.columns,
                          max_rows=settings.max_rows)
        report.queries += 1
        # Prefer: wait=<budget left>: the service may stop a query we will not wait for.
        server_timeout = max(1, math.ceil(self._remaining(deadline)))
        return asyncio.create_task(self.logs.query(kql, start=now - settings.timespan, end=now,
                                                   server_timeout=server_timeout))

    async def _collect_rows(self, task: asyncio.Task[LogRows], incidents: list[Incident],
                            evidence: dict[str, _Evidence], deadline: float, report: EnrichmentReport) -> None:
        _done, pending = await asyncio.wait({task}, timeout=self._remaining(deadline))
        await _cancel(pending)
        error = TimeoutError() if pending else task.exception()
        if error is not None:
            reason = _reason(error)
            if reason == "no answer in time":
                reason = f"no answer within {self.settings.budget:g} s"
            for incident in incidents:
                evidence[incident.resource_id].notes.append(f"Log Analytics unavailable: {reason}")
            # One query for the batch, so one failure and one log line, however many incidents it concerned.
            report.failures.append(f"Log Analytics: {reason}")
            log.warning("enrichment_failed", connector=self.connector, what="Log Analytics",
                        incidents=len(incidents), reason=reason,
                        error=str(error) if isinstance(error, RemoteError) else type(error).__name__)
            return
        result = task.result()
        owners = _row_owners(incidents, evidence)
        unmatched = 0
        for row in result.rows:
            owner = owners.get(str(row.get("SystemAlertId") or "").casefold()) or owners.get(
                str(row.get("IncidentName") or "").casefold())
            if owner is None:
                unmatched += 1
                continue
            rows = evidence[owner].rows
            if len(rows) < MAX_ROWS_PER_INCIDENT:
                rows.append(row)
        if unmatched:
            log.warning("enrichment_rows_unmatched", connector=self.connector, rows=unmatched,
                        hint="the query should return SystemAlertId or IncidentName")
        if result.partial_error is not None:
            report.failures.append(f"Log Analytics: partial result ({result.partial_error})")
            for incident in incidents:
                evidence[incident.resource_id].notes.append("Log Analytics: partial result, rows may be missing")

    def _note(self, target: _Evidence, report: EnrichmentReport, incident: Incident, what: str,
              error: BaseException) -> None:
        reason = _reason(error)
        target.notes.append(f"{what} unavailable: {reason}")
        report.failures.append(f"{what} of {incident.number}: {reason}")
        if isinstance(error, RateLimitedError) and error.code == BUDGET_SPENT:
            report.budget_spent += 1  # expected in a burst: one summary line per poll, not one per call
            return
        log.warning("enrichment_failed", connector=self.connector, incident=incident.number, what=what,
                    reason=reason, error=str(error) if isinstance(error, RemoteError) else type(error).__name__)


def _alert_id(alert: Mapping[str, Any]) -> str:
    props = alert.get("properties")
    value = props.get("systemAlertId") if isinstance(props, Mapping) else None
    return str(value or alert.get("name") or "")


def _row_owners(incidents: list[Incident], evidence: dict[str, _Evidence]) -> dict[str, str]:
    """Lower-cased SystemAlertId and incident name → incident resource id."""
    owners: dict[str, str] = {}
    for incident in incidents:
        owners[incident.name.casefold()] = incident.resource_id
        for alert in evidence[incident.resource_id].alerts:
            alert_id = _alert_id(alert)
            if alert_id:
                owners.setdefault(alert_id.casefold(), incident.resource_id)
    return owners


async def _cancel(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel and reap: no task outlives the enrichment call, and none is left "never retrieved"."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
