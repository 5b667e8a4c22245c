"""Typed configuration. Validated once at load; secrets are ``SecretStr`` and never printed."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from sentinel_signl4.config.durations import PositiveDuration, within
from sentinel_signl4.config.graph import GraphSourceConfig, SourceKind
from sentinel_signl4.config.sentinel_limits import SentinelLimitsConfig
from sentinel_signl4.config.signl_content import EnrichmentConfig, PresentationConfig
from sentinel_signl4.config.watchdog import WatchdogConfig
from sentinel_signl4.domain.enums import Classification, ClassificationReason, IncidentStatus, Severity
from sentinel_signl4.domain.signl import check_team_webhook_url, team_secret_of

__all__ = [
    "CLOUDS",
    "VALID_CLOSE_PAIRS",
    "AzureConfig",
    "CloudEndpoints",
    "Config",
    "ConnectorConfig",
    "ConsoleConfig",
    "ConsoleUser",
    "CredentialConfig",
    "FilterConfig",
    "PauseConfig",
    "ServerConfig",
    "Signl4Config",
    "StoreConfig",
    "SyncConfig",
    "TlsConfig",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Pairs Sentinel accepts when closing (reference: microsoft-apis.md §1.6).
VALID_CLOSE_PAIRS: dict[Classification, tuple[ClassificationReason, ...]] = {
    Classification.UNDETERMINED: (),
    Classification.TRUE_POSITIVE: (ClassificationReason.SUSPICIOUS_ACTIVITY,),
    Classification.BENIGN_POSITIVE: (ClassificationReason.SUSPICIOUS_BUT_EXPECTED,),
    Classification.FALSE_POSITIVE: (ClassificationReason.INCORRECT_ALERT_LOGIC, ClassificationReason.INACCURATE_DATA),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CloudEndpoints(_Strict):
    authority_host: str
    resource_manager: str
    log_analytics: str
    graph: str
    # Token audiences. They stay the cloud's own when an endpoint is overridden (a private endpoint or a proxy in
    # front of ARM still wants a token for https://management.azure.com); override them explicitly if needed.
    resource_manager_audience: str
    log_analytics_audience: str
    graph_audience: str

    def scope(self, service: Literal["resource_manager", "log_analytics", "graph"]) -> str:
        audience: str = getattr(self, f"{service}_audience")
        return audience.rstrip("/") + "/.default"


def _cloud(authority: str, arm: str, la: str, la_aud: str, graph: str) -> CloudEndpoints:
    return CloudEndpoints(authority_host=authority, resource_manager=arm, log_analytics=la, graph=graph,
                          resource_manager_audience=arm, log_analytics_audience=la_aud, graph_audience=graph)


CLOUDS: dict[str, CloudEndpoints] = {
    "AzurePublic": _cloud("https://login.microsoftonline.com", "https://management.azure.com",
                          "https://api.loganalytics.io", "https://api.loganalytics.io", "https://graph.microsoft.com"),
    "AzureUSGovernment": _cloud("https://login.microsoftonline.us", "https://management.usgovcloudapi.net",
                                "https://api.loganalytics.us", "https://api.loganalytics.us",
                                "https://graph.microsoft.us"),
    "AzureChina": _cloud("https://login.chinacloudapi.cn", "https://management.chinacloudapi.cn",
                         "https://api.loganalytics.azure.cn", "https://api.loganalytics.azure.cn",
                         "https://microsoftgraph.chinacloudapi.cn"),
}


def _https_url(value: str) -> str:
    if not re.match(r"^https://[^\s/]+", value):
        raise ValueError(f"must be an https:// URL, got {value!r}")
    return value.rstrip("/")


HttpsUrl = Annotated[str, AfterValidator(_https_url)]


class EndpointOverrides(_Strict):
    authority_host: HttpsUrl | None = None
    resource_manager: HttpsUrl | None = None
    log_analytics: HttpsUrl | None = None
    graph: HttpsUrl | None = None
    resource_manager_audience: HttpsUrl | None = None
    log_analytics_audience: HttpsUrl | None = None
    graph_audience: HttpsUrl | None = None


class CredentialConfig(_Strict):
    """How the connector authenticates to Entra ID. Every kind goes through azure-identity."""

    kind: Literal["client_secret", "certificate", "managed_identity", "workload_identity"] = "client_secret"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    certificate_path: str | None = None
    certificate_password: SecretStr | None = None
    token_file: str | None = None
    # When the client secret expires (Entra shows it; a certificate's own notAfter is read from the file).
    expires: date | None = None

    @model_validator(mode="after")
    def _complete(self) -> CredentialConfig:
        need: dict[str, tuple[str, ...]] = {
            "client_secret": ("client_id", "client_secret"),
            "certificate": ("client_id", "certificate_path"),
            "managed_identity": (),
            "workload_identity": ("client_id",),
        }
        missing = [k for k in need[self.kind] if not getattr(self, k)]
        if missing:
            raise ValueError(f"credential kind {self.kind!r} needs {', '.join(missing)}")
        return self


class AzureConfig(_Strict):
    """The tenant, the identity and (for ``source = "sentinel"``) the ARM path of the Sentinel workspace.

    ``subscription_id``, ``resource_group`` and ``workspace_name`` may be left out only by a connector whose
    ``source`` is ``"graph"``: Graph addresses incidents by tenant, not by workspace (checked by ConnectorConfig).
    """

    tenant_id: str
    subscription_id: str = ""
    resource_group: str = ""
    workspace_name: str = ""
    workspace_id: str = ""
    cloud: Literal["AzurePublic", "AzureUSGovernment", "AzureChina"] = "AzurePublic"
    endpoints: EndpointOverrides = Field(default_factory=EndpointOverrides)
    api_version: str = "2025-09-01"
    # Incidents per list page ($top). Sentinel's maximum is 1000; smaller pages keep each request short.
    page_size: int = Field(default=200, ge=1, le=1000)
    credential: CredentialConfig = Field(default_factory=CredentialConfig)
    # Our budget under Sentinel's per-workspace write and enrichment limits (config/sentinel_limits.py).
    limits: SentinelLimitsConfig = Field(default_factory=SentinelLimitsConfig)

    @field_validator("tenant_id")
    @classmethod
    def _guid(cls, value: str) -> str:
        if not _GUID.match(value):
            raise ValueError(f"must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got {value!r}")
        return value.lower()

    @field_validator("subscription_id")
    @classmethod
    def _subscription_guid(cls, value: str) -> str:
        if value and not _GUID.match(value):
            raise ValueError(f"must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got {value!r}")
        return value.lower()

    @field_validator("workspace_id")
    @classmethod
    def _workspace_guid(cls, value: str) -> str:
        if value and not _GUID.match(value):
            raise ValueError("must be the Log Analytics workspace GUID (Workspace ID), or empty to disable "
                             f"enrichment; got {value!r}")
        return value.lower()

    @field_validator("workspace_name")
    @classmethod
    def _workspace_name(cls, value: str) -> str:
        if value and not re.match(r"^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$|^[A-Za-z0-9]{1,3}$", value):
            raise ValueError("must be the ARM workspace name (letters, digits, hyphens; 4-63 characters)")
        return value

    @property
    def resolved_endpoints(self) -> CloudEndpoints:
        """The cloud's endpoints with the per-endpoint overrides applied."""
        updates = {k: v for k, v in self.endpoints.model_dump().items() if v}
        return CLOUDS[self.cloud].model_copy(update=updates)


class FilterConfig(_Strict):
    statuses: tuple[IncidentStatus, ...] = (IncidentStatus.NEW,)
    severities: tuple[Severity, ...] = tuple(Severity)
    # Bounded so that ``now - max_age`` stays a date Sentinel can filter on (its retention is 90 days by default).
    max_age: Annotated[PositiveDuration, within(timedelta(minutes=1), timedelta(days=90))] = timedelta(hours=24)

    @field_validator("statuses", "severities")
    @classmethod
    def _not_empty(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        if not value:
            raise ValueError("must list at least one value")
        return tuple(dict.fromkeys(value))


class Signl4Config(_Strict):
    webhook_url: SecretStr
    api_url: HttpsUrl = "https://connect.signl4.com/api"
    api_key: SecretStr | None = None
    send_via: Literal["webhook", "events_api"] = "webhook"
    # Connectors that share a SIGNL4 subscription share its event budget (150 events / 15 s); name the group.
    subscription: str = "default"
    # SIGNL4 user (id or e-mail) on whose behalf the REST API searches alerts (`userId`, required with API-key auth).
    # Pick a member of the team this connector pages; when empty the first active user the key can see is used,
    # who may not see this team's alerts.
    api_user: str = ""
    service: str = ""
    # Another connector reading the same incidents may page this team too only when both say so (see
    # Config._one_team_per_source): e.g. disjoint severity filters routing High to this team and Low to another.
    allow_shared_team: bool = False

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr) -> SecretStr:
        check_team_webhook_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _events_api_needs_key(self) -> Signl4Config:
        if self.send_via == "events_api" and self.api_key is None:
            raise ValueError("send_via = \"events_api\" needs api_key")
        return self

    @property
    def team_secret(self) -> str:
        return team_secret_of(self.webhook_url.get_secret_value())


class SyncConfig(_Strict):
    tag: str = "SIGNL4"
    skip_already_tagged: bool = True
    # How SIGNL4 changes come back: "webhook" (outbound webhook to our server), "poll" (REST API, needs api_key),
    # "both", "off", or "auto": webhook when webhook_token is set, plus poll when the SIGNL4 api_key is set.
    mode: Literal["auto", "webhook", "poll", "both", "off"] = "auto"
    webhook_token: SecretStr | None = None
    assign_owner_on: tuple[Literal["acknowledged", "closed"], ...] = ("acknowledged", "closed")
    close_classification: Classification = Classification.UNDETERMINED
    close_classification_reason: ClassificationReason | None = None
    comment_on_escalation: bool = False
    resolve_signl_on_close: bool = True
    reraise_on_reopen: bool = False
    owner_map: dict[str, str] = Field(default_factory=dict)
    poll_signl4_interval: Annotated[PositiveDuration, within(timedelta(seconds=1), timedelta(days=1))] = timedelta(
        seconds=60)
    reconcile_interval: Annotated[PositiveDuration, within(timedelta(minutes=1), timedelta(days=7))] = timedelta(
        minutes=15)
    # How long a SIGNL4 event for a Signl of this connector waits in the inbox for its link (the send's outcome is
    # recorded after SIGNL4 answered, or after an in-doubt send was reconciled) before it is given up as dead.
    unmatched_event_limit: Annotated[PositiveDuration, within(timedelta(minutes=1), timedelta(days=30))] = (
        timedelta(hours=24))

    @model_validator(mode="after")
    def _classification_pair(self) -> SyncConfig:
        allowed = VALID_CLOSE_PAIRS[self.close_classification]
        reason = self.close_classification_reason
        if (reason is None and allowed) or (reason is not None and reason not in allowed):
            pairs = "; ".join(f"{c.value}" + (f" + {' | '.join(r.value for r in rs)}" if rs else " (no reason)")
                              for c, rs in VALID_CLOSE_PAIRS.items())
            raise ValueError(f"close_classification {self.close_classification.value!r} with reason "
                             f"{reason.value if reason else None!r} is not accepted by Sentinel. Valid pairs: {pairs}")
        return self


_SENTINEL_KEYS = ("subscription_id", "resource_group", "workspace_name")


class HealthConfig(_Strict):
    """``[health]`` (and per connector ``[connectors.health]``, which overrides it): when a pending page counts as
    stuck, which puts the connector in error."""

    stuck_after: PositiveDuration | None = None


class ConnectorConfig(_Strict):
    name: str
    display_name: str = ""
    enabled: bool = True
    poll_interval: Annotated[PositiveDuration, within(timedelta(milliseconds=100), timedelta(days=1))] = timedelta(
        seconds=30)
    # How often the full filtered scan (the safety net under the incremental poll) runs; it also runs at start.
    full_scan_interval: Annotated[PositiveDuration, within(timedelta(minutes=1), timedelta(days=1))] = timedelta(
        minutes=15)
    azure: AzureConfig
    filter: FilterConfig = Field(default_factory=FilterConfig)
    signl4: Signl4Config
    sync: SyncConfig = Field(default_factory=SyncConfig)
    enrichment: EnrichmentConfig = Field(default_factory=EnrichmentConfig)
    presentation: PresentationConfig = Field(default_factory=PresentationConfig)
    source: SourceKind = "sentinel"
    graph: GraphSourceConfig = Field(default_factory=GraphSourceConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)

    @property
    def sync_mode(self) -> Literal["webhook", "poll", "both", "off"]:
        """The effective reverse-sync mode (``auto`` resolved)."""
        if self.sync.mode != "auto":
            return self.sync.mode
        webhook, poll = self.sync.webhook_token is not None, self.signl4.api_key is not None
        return "both" if webhook and poll else "webhook" if webhook else "poll" if poll else "off"

    @model_validator(mode="after")
    def _sentinel_needs_the_workspace_path(self) -> ConnectorConfig:
        """The Sentinel source addresses incidents by their ARM path: every part of it is required then."""
        if self.source != "sentinel":
            return self
        missing = [key for key in _SENTINEL_KEYS if not getattr(self.azure, key)]
        if missing:
            raise ValidationError.from_exception_data("ConnectorConfig", [
                InitErrorDetails(type=PydanticCustomError(
                    "sentinel_setting_missing",
                    'required for source = "sentinel" (the default): it is part of the workspace\'s ARM path. '
                    'A connector with source = "graph" does not need it',
                ), loc=("azure", key), input=None)
                for key in missing
            ])
        return self

    @model_validator(mode="after")
    def _sync_needs(self) -> ConnectorConfig:
        if self.sync.mode in ("poll", "both") and self.signl4.api_key is None:
            raise ValueError(f"sync.mode = {self.sync.mode!r} polls the SIGNL4 REST API and needs signl4.api_key")
        if self.sync.mode in ("webhook", "both") and self.sync.webhook_token is None:
            raise ValueError(f"sync.mode = {self.sync.mode!r} needs sync.webhook_token (the secret part of the "
                             "outbound-webhook URL; generate one with: python3 -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))')")
        token = self.sync.webhook_token.get_secret_value() if self.sync.webhook_token else ""
        if token and len(token) < 16:
            raise ValueError("sync.webhook_token must be at least 16 characters: it is the only protection of the "
                             "webhook endpoint")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit "
                             "(it appears in URLs, metrics and ExternalIDs)")
        return value


class StoreConfig(_Strict):
    url: str = "sqlite:///sentinel-signl4.db"
    # Where replicas of this host keep their instance files (engine/instances.py), which let a restarted process
    # take its dead predecessor's leases over at once. Default: "<sqlite file>.replicas"; none for PostgreSQL
    # (leases then change hands on expiry only). Must be a local directory shared by the replicas of one host.
    state_dir: str | None = None
    # Done outbox rows and processed SIGNL4 events older than this are deleted (links are kept for good).
    retention: Annotated[PositiveDuration, within(timedelta(hours=1), timedelta(days=3650))] = timedelta(days=30)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class TlsConfig(_Strict):
    ca_bundle: str | None = None


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, le=64 * 1024 * 1024)
    # Slow clients: a connection must send its request line and headers within header_timeout (from the connection,
    # or from the end of the previous response on a kept-alive one) and a webhook body within body_timeout; an idle
    # kept-alive connection is closed after keep_alive_timeout. At most max_connections are open at once: a new one
    # over the limit closes the oldest connection that has not sent its headers yet, so trickling clients cannot
    # starve health checks or webhooks.
    header_timeout: Annotated[PositiveDuration, within(timedelta(milliseconds=100), timedelta(minutes=5))] = (
        timedelta(seconds=10))
    body_timeout: Annotated[PositiveDuration, within(timedelta(milliseconds=100), timedelta(minutes=5))] = (
        timedelta(seconds=20))
    keep_alive_timeout: Annotated[PositiveDuration, within(timedelta(seconds=1), timedelta(minutes=5))] = (
        timedelta(seconds=5))
    max_connections: int = Field(default=100, ge=2, le=10_000)


class ConsoleUser(_Strict):
    """One ``[[console.users]]`` entry. ``password_hash`` is what ``sentinel-signl4 console hash-password`` prints
    (``scrypt$…``); it may be a ``${ENV}`` reference. ``read`` sees every page; ``admin`` may also act."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
    role: Literal["read", "admin"] = "read"
    password_hash: SecretStr

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, value: SecretStr) -> SecretStr:
        parts = value.get_secret_value().split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("must be a hash printed by `sentinel-signl4 console hash-password` (scrypt$…), "
                             "never the password itself")
        return value


class ConsoleConfig(_Strict):
    """``[console]``: the operator console and ``/metrics``, on their own listener (loopback by default)."""

    # Default: on when there is a user to sign in. Off, /metrics stays on the public listener (as before the
    # console existed) and there is no status page.
    enabled: bool | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    session_ttl: Annotated[PositiveDuration, within(timedelta(minutes=1), timedelta(days=7))] = timedelta(hours=8)
    # Wrong passwords in a row (per user name and per client address) before sign-ins are refused for
    # ``login_lockout``; each further failure doubles the lockout, up to 15 minutes.
    login_failures: int = Field(default=5, ge=1, le=100)
    login_lockout: Annotated[PositiveDuration, within(timedelta(seconds=1), timedelta(minutes=15))] = timedelta(
        minutes=1)
    users: tuple[ConsoleUser, ...] = ()

    @property
    def active(self) -> bool:
        """Whether ``run`` serves the console listener."""
        return self.enabled if self.enabled is not None else bool(self.users)

    @field_validator("users")
    @classmethod
    def _unique_users(cls, value: tuple[ConsoleUser, ...]) -> tuple[ConsoleUser, ...]:
        names = [u.name for u in value]
        if len(set(names)) != len(names):
            raise ValueError("console user names must be unique")
        return value


class PauseConfig(_Strict):
    """One ``[[pauses]]`` entry: a maintenance window known in advance (stored when the process starts; the CLI
    and the console set ad-hoc ones). ``connector = "*"`` is every connector; no ``severities``: every severity."""

    connector: str
    severities: tuple[str, ...] = ()
    start: AwareDatetime | None = None
    end: AwareDatetime
    mode: Literal["skip", "hold"] = "skip"
    reason: str = ""

    @model_validator(mode="after")
    def _order(self) -> PauseConfig:
        if self.start is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class KeyVaultConfig(_Strict):
    """How ``${keyvault:…}`` references are read. ``credential`` is the identity that reads them (typically
    ``kind = "managed_identity"``); without it, a reference inside a connector's table is read with that connector's
    own credential."""

    tenant_id: str = ""
    credential: CredentialConfig | None = None
    authority_host: HttpsUrl | None = None
    # How often referenced secrets are read again; a changed value restarts the connectors with it (README).
    refresh_interval: Annotated[PositiveDuration, within(timedelta(minutes=1), timedelta(days=7))] = timedelta(hours=1)
    # Key Vault's 401 challenge names the token resource; its domain must match the vault's (vault.azure.net).
    # Only for a vault behind a different host name (a private proxy, the emulator) turn this off.
    verify_challenge_resource: bool = True

    @model_validator(mode="after")
    def _tenant(self) -> KeyVaultConfig:
        if self.credential is not None and self.credential.kind != "managed_identity" and not self.tenant_id:
            raise ValueError(f"tenant_id is required for a {self.credential.kind} credential")
        return self


class LoggingConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"


class Config(_Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    pauses: tuple[PauseConfig, ...] = ()
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    connectors: tuple[ConnectorConfig, ...] = Field(min_length=1)
    health: HealthConfig = Field(default_factory=HealthConfig)
    watchdog: WatchdogConfig | None = None
    keyvault: KeyVaultConfig | None = None

    @field_validator("connectors")
    @classmethod
    def _unique(cls, value: tuple[ConnectorConfig, ...]) -> tuple[ConnectorConfig, ...]:
        seen: set[str] = set()
        for c in value:
            if c.name in seen:
                raise ValueError(f"connector name {c.name!r} is used twice; names must be unique")
            seen.add(c.name)
        return value

    @model_validator(mode="after")
    def _one_team_per_source(self) -> Config:
        """Two enabled connectors that read the same incidents and page the same SIGNL4 team page each incident
        twice (each has its own ExternalIDs). Refused unless both set ``signl4.allow_shared_team``."""
        enabled = [(i, c) for i, c in enumerate(self.connectors) if c.enabled]
        problems: list[InitErrorDetails] = []
        for n, (_, first) in enumerate(enabled):
            for j, second in enabled[n + 1:]:
                same = _same_source(first, second)
                if (same is None or first.signl4.team_secret != second.signl4.team_secret
                        or (first.signl4.allow_shared_team and second.signl4.allow_shared_team)):
                    continue
                problems.append(InitErrorDetails(type=PydanticCustomError(
                    "shared_team",
                    "connectors {first} and {second} both read {same} and page the same SIGNL4 team (same webhook "
                    "secret): every incident both select would be paged twice. Point one at another team, or set "
                    "signl4.allow_shared_team = true on both when their filters are disjoint",
                    {"first": repr(first.name), "second": repr(second.name), "same": same},
                ), loc=("connectors", j, "signl4", "allow_shared_team"), input=second.signl4.allow_shared_team))
        if problems:
            raise ValidationError.from_exception_data("Config", problems)
        return self

    def connector(self, name: str) -> ConnectorConfig:
        for c in self.connectors:
            if c.name == name:
                return c
        raise KeyError(f"no connector named {name!r}; known: {', '.join(c.name for c in self.connectors)}")

    def stuck_after(self, connector: ConnectorConfig) -> timedelta:
        """How long a page may be pending before ``connector`` is in error (its own, else ``[health]``, else 5 min)."""
        return connector.health.stuck_after or self.health.stuck_after or timedelta(minutes=5)

    def secrets(self) -> set[str]:
        """Every secret value in this config, for the log and error redactor."""
        found: set[str] = set()
        _collect(self, found)
        for c in self.connectors:
            found.add(c.signl4.team_secret)
        if self.watchdog is not None:
            found.add(self.watchdog.team_secret)
        return {s for s in found if len(s) >= 4}


def _same_source(first: ConnectorConfig, second: ConnectorConfig) -> str | None:
    """What two connectors read in common, described, or None if their incidents cannot be the same ones.

    Sentinel: one workspace (its ARM path, case-insensitive, in one cloud). Graph: one tenant (incidents and alerts
    of a tenant are the same attacks). Sentinel and Graph on one tenant: Defender XDR lists the incidents of a
    Sentinel workspace onboarded to the unified portal, so they may be the same incidents (derived from
    Microsoft's docs on the unified SOC platform, not from a tenant we could inspect)."""
    a, b = first.azure, second.azure
    if a.tenant_id != b.tenant_id or a.cloud != b.cloud:
        return None
    if first.source == second.source == "sentinel":
        path = ("subscription_id", "resource_group", "workspace_name")
        if all(getattr(a, k).casefold() == getattr(b, k).casefold() for k in path):
            return f"the Sentinel workspace {a.workspace_name!r}"
        return None
    if first.source == second.source == "graph":
        return f"the Graph security incidents of tenant {a.tenant_id}"
    return f"tenant {a.tenant_id} (a Sentinel workspace and Defender XDR, which may list its incidents)"


def _collect(model: BaseModel, found: set[str]) -> None:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
        elif isinstance(value, BaseModel):
            _collect(value, found)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, BaseModel):
                    _collect(item, found)
