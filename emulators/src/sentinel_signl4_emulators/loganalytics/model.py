"""State of the Log Analytics query emulator: the SecurityAlert and SecurityIncident tables, query limits, faults.

The tables are *derived* from the Sentinel emulator's seeded incidents for the workspace GUID the query names
(``Workspace.workspace_id``), so the rows a query returns describe exactly the alerts that ``POST …/alerts``
returns: same ``SystemAlertId``, names, severities, products, tactics, and an ``Entities`` column built from the
incident's entities. Column sets and value shapes follow reference microsoft-apis.md §2.5–2.6 (JSON strings in
``Entities``/``ExtendedProperties``, ``TenantId`` = the workspace GUID, comma-separated ``Tactics``).

The service's limits (§2.4) are the model's rules: 5 concurrent queries per principal (more wait in a queue),
3 minutes in the queue or more than 200 queued → 429, 200 queries per 30 s per principal → 429 with
``Retry-After``. Time-based admission is polled by the wire layer, so the model stays free of any event loop and
serves an in-process ASGI app and the threaded HTTPS server alike. No HTTP here: see ``loganalytics.py``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sentinel_signl4_emulators.common.kql import KqlError, Table, execute
from sentinel_signl4_emulators.sentinel.model import EntitySeed, SecurityAlertSeed, SentinelModel, Workspace

__all__ = [
    "LA_AUDIENCES",
    "SECURITY_ALERT_COLUMNS",
    "SECURITY_INCIDENT_COLUMNS",
    "Fault",
    "FaultKind",
    "LogAnalyticsModel",
    "QueryError",
    "QueryLimits",
    "QueryRecord",
    "QueryResult",
    "cell",
    "parse_timespan",
    "security_alert_entities",
]

#: Audiences a Log Analytics query token may carry (the documented resource and the newer host).
LA_AUDIENCES: Final = ("https://api.loganalytics.io", "https://api.loganalytics.azure.com")

SECURITY_ALERT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("TenantId", "string"), ("TimeGenerated", "datetime"), ("DisplayName", "string"), ("AlertName", "string"),
    ("AlertSeverity", "string"), ("Description", "string"), ("ProviderName", "string"), ("VendorName", "string"),
    ("VendorOriginalId", "string"), ("SystemAlertId", "string"), ("ResourceId", "string"),
    ("SourceComputerId", "string"), ("AlertType", "string"), ("ConfidenceLevel", "string"),
    ("ConfidenceScore", "real"), ("IsIncident", "bool"), ("StartTime", "datetime"), ("EndTime", "datetime"),
    ("ProcessingEndTime", "datetime"), ("RemediationSteps", "string"), ("ExtendedProperties", "string"),
    ("Entities", "string"), ("SourceSystem", "string"), ("WorkspaceSubscriptionId", "string"),
    ("WorkspaceResourceGroup", "string"), ("ExtendedLinks", "string"), ("ProductName", "string"),
    ("ProductComponentName", "string"), ("AlertLink", "string"), ("Status", "string"),
    ("CompromisedEntity", "string"), ("Tactics", "string"), ("Techniques", "string"), ("SubTechniques", "string"),
    ("Type", "string"),
)

SECURITY_INCIDENT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("TenantId", "string"), ("TimeGenerated", "datetime"), ("IncidentName", "string"), ("Title", "string"),
    ("Description", "string"), ("Severity", "string"), ("Status", "string"), ("Classification", "string"),
    ("ClassificationComment", "string"), ("ClassificationReason", "string"), ("Owner", "dynamic"),
    ("ProviderName", "string"), ("ProviderIncidentId", "string"), ("FirstActivityTime", "datetime"),
    ("LastActivityTime", "datetime"), ("FirstModifiedTime", "datetime"), ("LastModifiedTime", "datetime"),
    ("CreatedTime", "datetime"), ("ClosedTime", "datetime"), ("IncidentNumber", "int"),
    ("RelatedAnalyticRuleIds", "dynamic"), ("AlertIds", "dynamic"), ("BookmarkIds", "dynamic"),
    ("Comments", "dynamic"), ("Tasks", "dynamic"), ("Labels", "dynamic"), ("IncidentUrl", "string"),
    ("AdditionalData", "dynamic"), ("ModifiedBy", "string"), ("SourceSystem", "string"), ("Type", "string"),
)

# ProviderName as the SecurityAlert table spells it for each product [reported: rows of public connectors].
_PROVIDERS = {
    "azure sentinel": "ASI Scheduled Alerts",
    "microsoft sentinel": "ASI Scheduled Alerts",
    "microsoft defender advanced threat protection": "MDATP",
    "microsoft defender for endpoint": "MDATP",
    "azure active directory identity protection": "IPC",
    "microsoft cloud app security": "MCAS",
    "office 365 advanced threat protection": "OATP",
    "azure security center": "Azure Security Center",
}

# Entity kinds and property names in SecurityAlert.Entities (the inverse of domain.entities' mapping).
_LA_TYPES = {
    "Account": "account", "Host": "host", "Ip": "ip", "Url": "url", "DnsResolution": "dns", "Mailbox": "mailbox",
    "MailMessage": "mailMessage", "MailCluster": "mailCluster", "SubmissionMail": "SubmissionMail", "File": "file",
    "FileHash": "filehash", "Process": "process", "Malware": "malware", "CloudApplication": "cloud-application",
    "AzureResource": "azure-resource", "RegistryKey": "registry-key", "RegistryValue": "registry-value",
    "SecurityGroup": "security-group", "IoTDevice": "iotdevice", "Nic": "nic",
}
_LA_KEYS = {
    "Account": {"accountName": "Name", "upnSuffix": "UPNSuffix", "ntDomain": "NTDomain"},
    "File": {"fileName": "Name"},
    "FileHash": {"hashValue": "Value"},
    "Malware": {"malwareName": "Name"},
    "CloudApplication": {"appName": "Name"},
    "Host": {"omsAgentID": "OMSAgentID"},
}


class FaultKind(StrEnum):
    """Scripted failures of the next queries (control plane and tests)."""

    PARTIAL = "partial"        # 200 with half the rows and an "error" member (PartialError)
    BAD_QUERY = "bad_query"    # 400 BadArgumentError / SemanticError, whatever the query
    THROTTLE = "throttle"      # 429 with Retry-After
    SLOW = "slow"              # the query takes ``delay`` seconds (504 when it exceeds Prefer: wait)


@dataclass(slots=True)
class Fault:
    kind: FaultKind
    count: int = 1
    retry_after: int = 1
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Per-principal limits (reference §2.4); tests shrink the queue timeout."""

    concurrent: int = 5
    max_queued: int = 200
    queue_timeout: float = 180.0
    rate: int = 200
    window: float = 30.0


class QueryError(Exception):
    """A query answered with an error status; ``body`` is the JSON error document."""

    def __init__(self, status: int, code: str, message: str, *, innererror: Mapping[str, Any] | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.body: dict[str, Any] = {"error": {"message": message, "code": code}}
        if innererror:
            self.body["error"]["innererror"] = dict(innererror)


@dataclass(slots=True)
class QueryResult:
    table: Table
    error: dict[str, Any] | None = None
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """One query as the service saw it (for call-economy tests and the control plane)."""

    workspace_id: str
    client_id: str
    query: str
    timespan: str | None
    status: int
    at: datetime
    body: Mapping[str, Any] | None = None  # the JSON body as sent (POST), for contract tests
    prefer: str | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


_DURATION = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.I,
)


def _duration(text: str) -> timedelta | None:
    match = _DURATION.match(text.strip())
    if match is None or text.strip().upper() in ("P", "PT"):
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
                     minutes=parts.get("m", 0), seconds=parts.get("s", 0))


def _moment(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_timespan(text: str | None, now: datetime) -> tuple[datetime, datetime] | None:
    """``PT48H`` / ``PT86400.0S`` / ``P1D`` (ending now), ``start/end``, ``start/duration``, ``duration/end``.

    ``None``/empty means unbounded. Raises :class:`QueryError` 400 for anything else.
    """
    if text is None or not text.strip():
        return None
    if "/" in text:
        first, second = (part.strip() for part in text.split("/", 1))
        start, end = _moment(first), _moment(second)
        if start is not None and end is None and (span := _duration(second)) is not None:
            end = start + span
        elif start is None and end is not None and (span := _duration(first)) is not None:
            start = end - span
        if start is not None and end is not None and start <= end:
            return start, end
    elif (span := _duration(text)) is not None:
        return now - span, now
    raise QueryError(400, "BadArgumentError", "The request had some invalid properties",
                     innererror={"code": "InvalidTimespan", "message": f"Invalid timespan '{text}'."})


def security_alert_entities(entities: Iterable[EntitySeed]) -> str:
    """The ``Entities`` cell (JSON array string, LA spelling) for an alert's entities; ``""`` when none."""
    items: list[dict[str, Any]] = []
    for number, entity in enumerate(entities, start=2):
        renames = _LA_KEYS.get(entity.kind, {})
        item: dict[str, Any] = {"$id": str(number), "Type": _LA_TYPES.get(entity.kind, entity.kind.lower())}
        for key, value in entity.properties.items():
            if key in ("friendlyName", "additionalData"):
                continue
            item[renames.get(key, key[:1].upper() + key[1:])] = value
        items.append(item)
    return json.dumps(items, ensure_ascii=False) if items else ""


class LogAnalyticsModel:
    """Workspaces' tables, admission control and scripted faults. Thread-safe."""

    def __init__(
        self,
        sentinel: SentinelModel,
        *,
        clock: Callable[[], datetime] | None = None,
        limits: QueryLimits = QueryLimits(),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sentinel = sentinel
        self.clock = clock or sentinel.clock
        self.limits = limits
        self.monotonic = monotonic
        #: Seconds every query takes (on top of scripted ``SLOW`` faults); makes concurrency observable.
        self.latency = 0.0
        #: Rows younger than this are not visible yet (ingestion lag).
        self.ingestion_delay = timedelta(0)
        self._extra: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._grants: set[tuple[str, str]] = set()  # (client id, workspace GUID) for workspaces without Sentinel
        self._standalone: set[str] = set()
        self._faults: deque[Fault] = deque()
        self._running: dict[str, int] = {}
        self._queued: dict[str, int] = {}
        self._recent: dict[str, deque[float]] = {}
        self._records: list[QueryRecord] = []
        self.max_concurrent_seen = 0
        #: Custom roles (``AuthorizationModel``): table-level read actions, next to the built-in roles.
        self.custom_roles: Any = None
        self._lock = threading.RLock()

    # --- control plane -------------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._extra.clear()
            self._grants.clear()
            self._standalone.clear()
            self._faults.clear()
            self._running.clear()
            self._queued.clear()
            self._recent.clear()
            self._records.clear()
            self.max_concurrent_seen = 0
            self.latency = 0.0
            self.ingestion_delay = timedelta(0)

    def add_workspace(self, workspace_id: str, *, readers: Iterable[str] = ()) -> None:
        """A workspace with no Sentinel behind it (its tables hold only rows added with :meth:`add_rows`)."""
        with self._lock:
            self._standalone.add(workspace_id.lower())
            self._grants.update((client.lower(), workspace_id.lower()) for client in readers)

    def add_rows(self, workspace_id: str, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Extra rows for ``table`` (``SecurityAlert`` or ``SecurityIncident``), on top of the derived ones."""
        if table not in ("SecurityAlert", "SecurityIncident"):
            raise ValueError(f"unknown table {table!r}")
        with self._lock:
            self._extra.setdefault((workspace_id.lower(), table), []).extend(dict(row) for row in rows)

    def inject(self, fault: Fault) -> None:
        """Script the next ``fault.count`` queries to fail in the given way."""
        with self._lock:
            self._faults.append(fault)

    def records(self) -> list[QueryRecord]:
        with self._lock:
            return list(self._records)

    # --- admission (polled by the wire layer) --------------------------------------------------------------------

    def admit(self, client_id: str) -> None:
        """Count a query against the per-principal rate; raise 429 when 200 per 30 s are used up."""
        now = self.monotonic()
        with self._lock:
            recent = self._recent.setdefault(client_id, deque())
            while recent and recent[0] <= now - self.limits.window:
                recent.popleft()
            if len(recent) >= self.limits.rate:
                wait = max(1, int(recent[0] + self.limits.window - now + 0.999))
                raise QueryError(
                    429, "ThrottledError",  # code as reported by public clients [unverified]
                    f"Your request has been throttled: more than {self.limits.rate} queries in "
                    f"{self.limits.window:g} seconds. Retry after {wait} seconds.",
                    retry_after=wait,
                )
            if self._queued.get(client_id, 0) >= self.limits.max_queued:
                raise QueryError(429, "ThrottledError",
                                 f"Too many queued queries (more than {self.limits.max_queued}).", retry_after=1)
            recent.append(now)
            self._queued[client_id] = self._queued.get(client_id, 0) + 1

    def try_start(self, client_id: str) -> bool:
        """Take a concurrency slot if one of the principal's 5 is free (the query leaves the queue)."""
        with self._lock:
            if self._running.get(client_id, 0) >= self.limits.concurrent:
                return False
            self._running[client_id] = self._running.get(client_id, 0) + 1
            self._queued[client_id] -= 1
            self.max_concurrent_seen = max(self.max_concurrent_seen, self._running[client_id])
            return True

    def give_up(self, client_id: str) -> QueryError:
        """The query waited too long in the queue: leave it and answer 429."""
        with self._lock:
            self._queued[client_id] = max(0, self._queued.get(client_id, 0) - 1)
        return QueryError(429, "ThrottledError",
                          f"The query waited more than {self.limits.queue_timeout:g} seconds for one of the "
                          f"{self.limits.concurrent} concurrent query slots.", retry_after=1)

    def finish(self, client_id: str) -> None:
        with self._lock:
            self._running[client_id] = max(0, self._running.get(client_id, 0) - 1)

    def running(self, client_id: str) -> int:
        with self._lock:
            return self._running.get(client_id, 0)

    # --- queries -------------------------------------------------------------------------------------------------

    def authorise(self, workspace_id: str, client_id: str) -> frozenset[str] | None:
        """404 for an unknown workspace, 403 when the principal has no role on it.

        Returns the tables the principal may read: ``None`` for every table (a built-in role), else the tables its
        custom role grants with ``Microsoft.OperationalInsights/workspaces/query/<Table>/read`` (legacy table-level
        RBAC; the role also needs ``workspaces/read`` and ``workspaces/query/read``). A table outside that set is
        not there for the query, as if it did not exist [how the service reports it is unverified].
        """
        key = workspace_id.lower()
        workspace = self._sentinel_workspace(key)
        with self._lock:
            standalone = key in self._standalone
            granted = (client_id.lower(), key) in self._grants
        if workspace is None and not standalone:
            # Status and code as commonly reported for an unknown workspace GUID [unverified].
            raise QueryError(404, "WorkspaceNotFoundError", f"Workspace '{workspace_id}' could not be found.")
        if granted or (workspace is not None and self.sentinel.role_for(client_id, workspace.ref) is not None):
            return None
        readable = self._custom_readable(workspace, client_id)
        if readable is not None:
            return readable
        raise QueryError(403, "InsufficientAccessError",
                         "The provided credentials have insufficient access to perform the requested operation")

    def _custom_readable(self, workspace: Workspace | None, client_id: str) -> frozenset[str] | None:
        app = self.sentinel.entra.find_app(client_id)
        if workspace is None or app is None or self.custom_roles is None:
            return None
        scope = workspace.ref.resource_id
        allows = self.custom_roles.allows
        prefix = "Microsoft.OperationalInsights/workspaces/"
        if not (allows(app.object_id, scope, prefix + "read") and allows(app.object_id, scope, prefix + "query/read")):
            return None
        return frozenset(table for table in ("SecurityAlert", "SecurityIncident")
                         if allows(app.object_id, scope, f"{prefix}query/{table}/read"))

    def next_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.count -= 1
            if fault.count <= 0:
                self._faults.popleft()
            return Fault(fault.kind, 1, fault.retry_after, fault.delay)

    def record(self, workspace_id: str, client_id: str, query: str, timespan: str | None, status: int, *,
               body: Mapping[str, Any] | None = None, prefer: str | None = None) -> None:
        with self._lock:
            self._records.append(QueryRecord(workspace_id.lower(), client_id, query, timespan, status, self.clock(),
                                             body, prefer))

    def run(self, workspace_id: str, query: str, timespan: str | None, fault: Fault | None = None, *,
            readable: frozenset[str] | None = None) -> QueryResult:
        """Execute ``query``; raise :class:`QueryError` (400 for a query the engine rejects)."""
        now = self.clock()
        bounds = parse_timespan(timespan, now)
        if fault is not None and fault.kind is FaultKind.BAD_QUERY:
            raise QueryError(400, "BadArgumentError", "The request had some invalid properties",
                             innererror={"code": "SemanticError", "message": "A semantic error occurred.",
                                         "innererror": {"code": "SEM0100",
                                                        "message": "Injected fault: query rejected."}})
        tables = {name: self._table(workspace_id.lower(), name, columns, bounds, now)
                  for name, columns in (("SecurityAlert", SECURITY_ALERT_COLUMNS),
                                        ("SecurityIncident", SECURITY_INCIDENT_COLUMNS))
                  if readable is None or name in readable}
        try:
            result = execute(query, tables, now=now)
        except KqlError as exc:
            raise QueryError(400, "BadArgumentError", "The request had some invalid properties",
                             innererror={"code": exc.kind, "message": exc.message}) from None
        if fault is not None and fault.kind is FaultKind.PARTIAL:
            # The shape seen in Azure/azure-sdk-for-python#25137: tables present, plus "error".
            result.rows = result.rows[: len(result.rows) // 2]
            return QueryResult(result, error={
                "code": "PartialError", "message": "There were some errors when processing your query.",
                "details": [{"code": "EngineError",
                             "message": "Something went wrong processing your query on the server.",
                             "innererror": {"code": "-2133196790", "message": "Injected fault: partial result.",
                                            "severity": 3, "severityName": "Warning"}}],
            })
        return QueryResult(result)

    # --- tables --------------------------------------------------------------------------------------------------

    def _sentinel_workspace(self, workspace_id: str) -> Workspace | None:
        for workspace in self.sentinel.workspaces():
            if workspace.workspace_id.lower() == workspace_id:
                return workspace
        return None

    def _table(self, workspace_id: str, name: str, columns: tuple[tuple[str, str], ...],
               bounds: tuple[datetime, datetime] | None, now: datetime) -> Table:
        workspace = self._sentinel_workspace(workspace_id)
        rows: list[dict[str, Any]] = []
        if workspace is not None:
            rows = self._alert_rows(workspace) if name == "SecurityAlert" else self._incident_rows(workspace)
        with self._lock:
            rows += [dict(row) for row in self._extra.get((workspace_id, name), [])]
        visible_until = now - self.ingestion_delay
        kept = []
        for row in rows:
            generated = row.get("TimeGenerated")
            if not isinstance(generated, datetime) or generated > visible_until:
                continue
            if bounds is not None and not bounds[0] <= generated <= bounds[1]:
                continue
            kept.append({column: row.get(column) for column, _ in columns})
        return Table(list(columns), kept)

    def _alert_rows(self, workspace: Workspace) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for incident in self.sentinel.list_incidents(workspace.ref):
            name = str(incident["name"])
            entities = self.sentinel.entities(workspace.ref, name)
            for alert in self.sentinel.alerts(workspace.ref, name):
                involved = [e for e in entities if e.entity_id in alert.entity_ids] if alert.entity_ids else entities
                rows.extend(self._alert_versions(workspace, alert, involved))
        return rows

    @staticmethod
    def _alert_versions(workspace: Workspace, alert: SecurityAlertSeed,
                        entities: list[EntitySeed]) -> list[dict[str, Any]]:
        product = alert.product_name
        sentinel_rule = product.casefold() in ("azure sentinel", "microsoft sentinel")
        extended = {"Analytic Rule Name": alert.display_name, "ProcessedBySentinel": "True",
                    "Alert generation status": "Full alert created"} if sentinel_rule else {}
        base: dict[str, Any] = {
            "TenantId": workspace.workspace_id, "TimeGenerated": alert.time_generated,
            "DisplayName": alert.display_name, "AlertName": alert.display_name,
            "AlertSeverity": str(alert.severity), "Description": alert.description,
            "ProviderName": _PROVIDERS.get(product.casefold(), product), "VendorName": alert.vendor_name,
            "VendorOriginalId": alert.provider_alert_id or str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                                          alert.system_alert_id)),
            "SystemAlertId": alert.system_alert_id, "ResourceId": "", "SourceComputerId": "",
            "AlertType": alert.alert_type or alert.display_name, "ConfidenceLevel": alert.confidence_level,
            "ConfidenceScore": None, "IsIncident": False, "StartTime": alert.time_generated,
            "EndTime": alert.time_generated, "ProcessingEndTime": alert.time_generated + timedelta(seconds=40),
            "RemediationSteps": json.dumps(list(alert.remediation_steps)) if alert.remediation_steps else "",
            "ExtendedProperties": json.dumps(extended), "Entities": security_alert_entities(entities),
            "SourceSystem": "Detection", "WorkspaceSubscriptionId": workspace.ref.subscription_id,
            "WorkspaceResourceGroup": workspace.ref.resource_group, "ExtendedLinks": "", "ProductName": product,
            "ProductComponentName": alert.product_component_name, "AlertLink": "", "Status": "New",
            "CompromisedEntity": alert.compromised_entity, "Tactics": ", ".join(alert.tactics) or "Unknown",
            "Techniques": "", "SubTechniques": "", "Type": "SecurityAlert",
        }
        versions = [base]
        if alert.status != "New":
            # A status change appends a row: queries must take arg_max(TimeGenerated, *) per SystemAlertId.
            versions.append({**base, "TimeGenerated": alert.time_generated + timedelta(minutes=1),
                             "Status": alert.status})
        return versions

    def _incident_rows(self, workspace: Workspace) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for incident in self.sentinel.list_incidents(workspace.ref):
            props: Mapping[str, Any] = incident.get("properties") or {}
            name = str(incident["name"])
            created = _moment(str(props.get("createdTimeUtc") or ""))
            modified = _moment(str(props.get("lastModifiedTimeUtc") or "")) or created
            if created is None or modified is None:
                continue
            owner = props.get("owner") or {}
            row: dict[str, Any] = {
                "TenantId": workspace.workspace_id, "TimeGenerated": modified, "IncidentName": name,
                "Title": props.get("title", ""), "Description": props.get("description", ""),
                "Severity": props.get("severity", ""), "Status": props.get("status", ""),
                "Classification": props.get("classification", ""),
                "ClassificationComment": props.get("classificationComment", ""),
                "ClassificationReason": props.get("classificationReason", ""), "Owner": json.dumps(owner),
                "ProviderName": props.get("providerName", ""),
                "ProviderIncidentId": props.get("providerIncidentId", ""),
                "FirstActivityTime": _moment(str(props.get("firstActivityTimeUtc") or "")),
                "LastActivityTime": _moment(str(props.get("lastActivityTimeUtc") or "")),
                "FirstModifiedTime": created, "LastModifiedTime": modified, "CreatedTime": created,
                "ClosedTime": modified if props.get("status") == "Closed" else None,
                "IncidentNumber": props.get("incidentNumber"),
                "RelatedAnalyticRuleIds": json.dumps(props.get("relatedAnalyticRuleIds") or []),
                "AlertIds": json.dumps([a.system_alert_id for a in self.sentinel.alerts(workspace.ref, name)]),
                "BookmarkIds": "[]", "Comments": "[]", "Tasks": "[]",
                "Labels": json.dumps(props.get("labels") or []), "IncidentUrl": props.get("incidentUrl", ""),
                "AdditionalData": json.dumps(props.get("additionalData") or {}), "ModifiedBy": "",
                "SourceSystem": "Azure", "Type": "SecurityIncident",
            }
            if modified > created:
                # The creation row, older than the current state: arg_max(TimeGenerated, *) must skip it.
                rows.append({**row, "TimeGenerated": created, "Status": "New", "LastModifiedTime": created,
                             "ClosedTime": None})
            rows.append(row)
        return rows


def cell(value: Any, kind: str) -> Any:
    """A cell as the query API serialises it: ISO datetimes with 7 fractional digits, dynamic as JSON text."""
    if value is None:
        return None
    if kind == "datetime" and isinstance(value, datetime):
        return _iso(value)
    if kind == "dynamic" and not isinstance(value, str):
        return json.dumps(value, separators=(",", ":"))
    if kind == "timespan" and isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if kind == "string" and not isinstance(value, str):
        return str(value)
    return value
