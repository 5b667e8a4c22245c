"""What ``provision`` needs of a configuration: per connector its ids and features, never its secrets.

The connector's own secrets (client secret, SIGNL4 webhook URL and API key, webhook token) are what provisioning
creates or what it has no use for, so the file is read without them: a ``${ENV}`` reference in a secret is left
unresolved (its *presence* still counts: ``sync.mode = "auto"`` depends on whether ``webhook_token`` and ``api_key``
are configured). An unresolved reference anywhere else, or an id that is missing or malformed, is a problem; every
problem of every connector is reported at once (:class:`ProvisionInputError`), each with the flag that supplies it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from sentinel_signl4.config.graph import GraphSourceConfig
from sentinel_signl4.config.interpolate import read_secret_file, resolve_references
from sentinel_signl4.config.signl_content import EnrichmentConfig

__all__ = [
    "ConnectorTarget",
    "Features",
    "IdOverrides",
    "IdentityKind",
    "ProvisionInputError",
    "Workspace",
    "load_targets",
    "parse_targets",
]

IdentityKind = Literal["client_secret", "certificate", "managed_identity", "workload_identity"]
_KINDS: tuple[IdentityKind, ...] = ("client_secret", "certificate", "managed_identity", "workload_identity")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$|^[A-Za-z0-9]{1,3}$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")
# Keys whose values are secrets: never needed here, never resolved.
_SECRET_KEYS = {("credential", "client_secret"), ("credential", "certificate_password"), ("signl4", "webhook_url"),
                ("signl4", "api_key"), ("sync", "webhook_token")}


class ProvisionInputError(Exception):
    """Values provisioning needs and does not have; ``str()`` lists every one of them."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


@dataclass(frozen=True)
class IdOverrides:
    """Ids given as flags: they replace the configuration's values for every selected connector."""

    tenant_id: str | None = None
    subscription_id: str | None = None
    resource_group: str | None = None
    workspace_name: str | None = None
    workspace_id: str | None = None
    client_id: str | None = None
    connectors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Workspace:
    """A Sentinel workspace by its ARM path."""

    subscription_id: str
    resource_group: str
    name: str

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    @property
    def resource_id(self) -> str:
        return f"{self.resource_group_id}/providers/Microsoft.OperationalInsights/workspaces/{self.name}"


@dataclass(frozen=True)
class Features:
    """What the connector's configuration makes it do, as far as rights are concerned."""

    tags: bool = True  # sync.tag: label each raised incident (a write)
    sync_writes: bool = False  # reverse sync on: acknowledge/close/comment from SIGNL4 (writes and comments)
    lifecycle_reads: bool = True  # reverse path present: reads incidents modified since the cursor
    enrichment: EnrichmentConfig | None = None  # set when Log Analytics enrichment is on (workspace GUID + enabled)
    graph_resource: Literal["incidents", "alerts"] = "incidents"
    owner_lookup: bool = False  # owners resolved through Graph (User.Read.All)


@dataclass(frozen=True)
class ConnectorTarget:
    """One connector as provisioning sees it."""

    name: str
    tenant_id: str
    source: Literal["sentinel", "graph"]
    identity: IdentityKind
    client_id: str | None
    cloud: str = "AzurePublic"
    workspace: Workspace | None = None
    features: Features = field(default_factory=Features)


@dataclass
class _Reader:
    """Reads one connector's raw table; collects problems instead of stopping at the first."""

    raw: Mapping[str, Any]
    label: str
    env: Mapping[str, str]
    problems: list[str]

    def present(self, *path: str) -> bool:
        node: Any = self.raw
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return False
            node = node[key]
        return node not in (None, "")

    def value(self, *path: str, flag: str | None = None, required: bool = False,
              pattern: re.Pattern[str] | None = None, what: str = "", lenient: bool = False) -> str | None:
        node: Any = self.raw
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        key = ".".join(path)
        hint = f" (or pass {flag})" if flag else ""
        if node is None or node == "":
            if required:
                self.problems.append(f"{self.label}.{key}: required, not set{hint}")
            return None
        if not isinstance(node, str):
            self.problems.append(f"{self.label}.{key}: must be a string")
            return None
        text, missing = _resolve(node, self.env)
        if missing:
            if not lenient:
                self.problems.append(f"{self.label}.{key}: {'; '.join(missing)}{hint}")
            return None
        if pattern is not None and text and not pattern.match(text):
            self.problems.append(f"{self.label}.{key}: {what or 'invalid value'}, got {text!r}")
            return None
        return text or None

    def section(self, name: str) -> dict[str, Any]:
        """A sub-table with its non-secret strings resolved (problems recorded for unresolved ones)."""
        node = self.raw.get(name)
        if not isinstance(node, Mapping):
            return {}
        return {key: self._resolved(value, f"{name}.{key}") for key, value in node.items()
                if (name, key) not in _SECRET_KEYS}

    def _resolved(self, value: Any, key: str) -> Any:
        if isinstance(value, str):
            text, missing = _resolve(value, self.env)
            if missing:
                self.problems.append(f"{self.label}.{key}: {'; '.join(missing)}")
            return text
        if isinstance(value, list):
            return [self._resolved(v, key) for v in value]
        if isinstance(value, Mapping):
            return {k: self._resolved(v, f"{key}.{k}") for k, v in value.items()}
        return value


def _sub(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    node = raw.get(key)
    return node if isinstance(node, Mapping) else {}


def _resolve(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    # Ids may come from the environment or from secret files. Key Vault is not read here (provisioning needs no
    # secret and no access to the vault): an id behind a Key Vault reference is reported, to be passed as a flag.
    return resolve_references(text, env, {"file": read_secret_file})


def load_targets(path: str | os.PathLike[str], overrides: IdOverrides | None = None,
                 env: Mapping[str, str] | None = None) -> list[ConnectorTarget]:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProvisionInputError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    return parse_targets(text, source=source, overrides=overrides, env=env)


def parse_targets(text: str, *, source: str = "<config>", overrides: IdOverrides | None = None,
                  env: Mapping[str, str] | None = None) -> list[ConnectorTarget]:
    """The connectors of a configuration text, as provisioning needs them (see the module docstring)."""
    overrides = overrides or IdOverrides()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProvisionInputError(source, [f"not valid TOML: {exc}"]) from None
    connectors = raw.get("connectors")
    if not isinstance(connectors, list) or not connectors:
        raise ProvisionInputError(source, ["no [[connectors]] in the file"])
    problems: list[str] = []
    targets: list[ConnectorTarget] = []
    names = [str(c.get("name", "")) for c in connectors if isinstance(c, Mapping)]
    unknown = [name for name in overrides.connectors if name not in names]
    if unknown:
        problems.append(f"--connector {', '.join(unknown)}: no such connector; known: {', '.join(names)}")
    for index, item in enumerate(connectors):
        if not isinstance(item, Mapping):
            problems.append(f"connectors[{index}]: must be a table")
            continue
        name = str(item.get("name", ""))
        if overrides.connectors and name not in overrides.connectors:
            continue
        target = _target(item, f"connectors[{index}] ({name})", overrides,
                         os.environ if env is None else env, problems)
        if target is not None:
            targets.append(target)
    if problems:
        raise ProvisionInputError(source, problems)
    return targets


def _target(raw: Mapping[str, Any], label: str, overrides: IdOverrides, env: Mapping[str, str],
            problems: list[str]) -> ConnectorTarget | None:
    before = len(problems)
    r = _Reader(raw, label, env, problems)
    name = r.value("name", required=True) or ""
    source = r.value("source") or "sentinel"
    if source not in ("sentinel", "graph"):
        problems.append(f"{label}.source: must be \"sentinel\" or \"graph\", got {source!r}")
    azure = _Reader(_sub(raw, "azure"), f"{label}.azure", env,
                    problems)

    def azure_id(key: str, flag: str, given: str | None, pattern: re.Pattern[str], what: str,
                 required: bool) -> str | None:
        if given is not None:
            if not pattern.match(given):
                problems.append(f"{flag}: {what}, got {given!r}")
                return None
            return given
        return azure.value(key, flag=flag, required=required, pattern=pattern, what=what)

    tenant = azure_id("tenant_id", "--tenant", overrides.tenant_id, _GUID, "must be a GUID", True)
    sentinel = source == "sentinel"
    subscription = azure_id("subscription_id", "--subscription", overrides.subscription_id, _GUID,
                            "must be a GUID", sentinel)
    group = azure_id("resource_group", "--resource-group", overrides.resource_group, _RESOURCE_GROUP,
                     "must be a resource group name", sentinel)
    workspace_name = azure_id("workspace_name", "--workspace-name", overrides.workspace_name, _WORKSPACE_NAME,
                              "must be the ARM workspace name", sentinel)
    workspace_id = azure_id("workspace_id", "--workspace-id", overrides.workspace_id, _GUID,
                            "must be the Log Analytics workspace GUID", False)
    credential = _Reader(_sub(azure.raw, "credential"),
                         f"{label}.azure.credential", env, problems)
    kind = credential.value("kind") or "client_secret"
    if kind not in _KINDS:
        problems.append(f"{label}.azure.credential.kind: must be one of {', '.join(_KINDS)}, got {kind!r}")
    # Without a client id an app registration is created (and looked up by name on a re-run); an unresolved
    # ${CLIENT_ID} is the id provisioning is about to create. A managed identity exists already: its id is needed.
    managed = kind == "managed_identity"
    client_id = overrides.client_id or credential.value("client_id", flag="--client-id", required=managed,
                                                        lenient=not managed)
    cloud = azure.value("cloud") or "AzurePublic"
    features = _features(r, raw, sentinel=sentinel, workspace_id=workspace_id)
    if len(problems) > before or tenant is None:
        return None
    workspace = (Workspace(subscription or "", group or "", workspace_name or "") if sentinel else None)
    return ConnectorTarget(name=name, tenant_id=tenant.lower(), source="sentinel" if sentinel else "graph",
                           identity=kind, client_id=client_id, cloud=cloud,  # type: ignore[arg-type]
                           workspace=workspace, features=features)


def _features(r: _Reader, raw: Mapping[str, Any], *, sentinel: bool, workspace_id: str | None) -> Features:
    sync = r.section("sync")
    sync_raw = _Reader(_sub(raw, "sync"), f"{r.label}.sync", r.env,
                       r.problems)
    signl4_raw = _Reader(_sub(raw, "signl4"), f"{r.label}.signl4",
                         r.env, r.problems)
    mode = str(sync.get("mode", "auto"))
    if mode == "auto":  # as ConnectorConfig.sync_mode, from whether the secrets are configured (not their values)
        webhook, poll = sync_raw.present("webhook_token"), signl4_raw.present("api_key")
        mode = "both" if webhook and poll else "webhook" if webhook else "poll" if poll else "off"
    assign_owner_on = sync.get("assign_owner_on", ["acknowledged", "closed"])
    owner_map = sync.get("owner_map", {})
    enrichment: EnrichmentConfig | None = None
    graph = GraphSourceConfig()
    try:
        settings = EnrichmentConfig.model_validate(r.section("enrichment"))
        if sentinel and workspace_id and settings.enabled:
            enrichment = settings
        graph = GraphSourceConfig.model_validate(r.section("graph"))
    except ValidationError as exc:
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            r.problems.append(f"{r.label}: {key}: {error['msg']}")
    return Features(
        tags=bool(sync.get("tag", "SIGNL4")),
        sync_writes=mode != "off",
        lifecycle_reads=(mode != "off" or bool(sync.get("resolve_signl_on_close", True))
                         or bool(sync.get("reraise_on_reopen", False))),
        enrichment=enrichment,
        graph_resource=graph.resource,
        owner_lookup=bool(assign_owner_on) and not owner_map,
    )
