"""A ready connector configuration (TOML) pointing at the emulators, for ``demo``, ``emulate`` and tests.

The emulators are reached through the per-endpoint overrides, exactly as a sovereign cloud or a private endpoint
would be: nothing in the connector knows it is talking to an emulator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sentinel_signl4_emulators.seed import DemoWorld

__all__ = ["emulator_config", "toml_value"]


def toml_value(value: Any) -> str:
    """``value`` as a TOML value (bool, number, string, array, inline table)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def _table(name: str, values: Mapping[str, Any]) -> str:
    lines = [f"[{name}]"] if name else []
    lines += [f"{key} = {toml_value(value)}" for key, value in values.items() if value is not None]
    return "\n".join(lines) + "\n"


def emulator_config(world: DemoWorld, base_url: str, *, ca_path: str | Path, store_url: str,
                    name: str = "contoso", display_name: str = "Contoso Ltd", api_key: bool = True,
                    server: Mapping[str, Any] | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None,
                    extra_tables: str = "", source: str = "sentinel") -> str:
    """TOML for one connector against the seeded ``world`` served at ``base_url``.

    ``source`` is the connector's ``source``: with ``"graph"`` the connector reads the emulated Defender XDR
    incidents of the world's tenant and its config carries no workspace path (as a Graph-only one would).
    ``overrides`` maps a table (``"filter"``, ``"sync"``, ``"signl4"``, ``"azure"``, ``"credential"``, ``"connector"``,
    ``"graph"``, ``"logging"``, ``"limits"``: ``[connectors.azure.limits]``) to keys that replace or add to the
    defaults written here.
    """
    o = {k: dict(v) for k, v in (overrides or {}).items()}
    connector = {"name": name, "display_name": display_name, "poll_interval": "2s", "source": source,
                 **o.get("connector", {})}
    workspace = {} if source == "graph" else {
        "subscription_id": world.subscription_id, "resource_group": world.resource_group,
        "workspace_name": world.workspace_name, "workspace_id": world.workspace_id}
    azure = {"tenant_id": world.tenant_id, **workspace, "cloud": "AzurePublic", **o.get("azure", {})}
    endpoints = {"authority_host": base_url, "resource_manager": base_url, "log_analytics": base_url,
                 "graph": base_url, **o.get("endpoints", {})}
    credential = {"kind": "client_secret", "client_id": world.client_id, "client_secret": world.client_secret,
                  **o.get("credential", {})}
    signl4 = {"webhook_url": f"{base_url}/webhook/{world.signl4_team_secret}", "api_url": f"{base_url}/api",
              "api_key": world.signl4_api_key if api_key else None, "subscription": name,
              "service": "Microsoft Sentinel", **o.get("signl4", {})}
    sync = {"tag": "SIGNL4", **o.get("sync", {})}
    parts = [
        _table("store", {"url": store_url}),
        _table("tls", {"ca_bundle": str(ca_path)}),
        _table("logging", {"level": "info", "format": "console", **o.get("logging", {})}),
    ]
    if server is not None:
        parts.append(_table("server", server))
    parts += [
        "[[connectors]]\n" + _table("", connector),
        _table("connectors.azure", azure),
        _table("connectors.azure.endpoints", endpoints),
        _table("connectors.azure.credential", credential),
    ]
    if "limits" in o:
        parts.append(_table("connectors.azure.limits", o["limits"]))
    if "filter" in o:
        parts.append(_table("connectors.filter", o["filter"]))
    if "graph" in o:
        parts.append(_table("connectors.graph", o["graph"]))
    parts += [_table("connectors.signl4", signl4), _table("connectors.sync", sync)]
    if extra_tables:
        parts.append(extra_tables)
    return "\n".join(parts)
