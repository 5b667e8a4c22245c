"""``provision apply`` then runs ``check`` against what it created, tenant by tenant.

The operator's config is taken as it is, with each provisioned connector's ``client_id`` set to the identity apply
created or found and its ``client_secret`` read from the file apply wrote (``${file:…}``). Everything else the check
needs (the SIGNL4 webhook URL, the API key, …) comes from the config and its environment as ``run`` would read it;
when something is missing there, the tenant's check is skipped with every missing value named. A certificate apply
made is used through its PEM file. Identities that only sign in where they run (a managed identity, a workload
identity) are not checked from here.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sentinel_signl4.config import ConfigError
from sentinel_signl4.config.loader import validate_config_data
from sentinel_signl4.config.paths import resolve_store_paths, state_base
from sentinel_signl4.provision.apply import TenantOutcome

__all__ = ["check_new_identities"]


def _checked_config(raw: Mapping[str, Any], records: Sequence[Mapping[str, str]]) -> tuple[dict[str, Any], list[str]]:
    """The config data restricted to the connectors of ``records`` that sign in with a created client secret, each
    with its new client id and secret file; and the connectors left out, with why."""
    by_connector = {name.strip(): record for record in records for name in record["connectors"].split(",")}
    data = copy.deepcopy(dict(raw))
    kept: list[dict[str, Any]] = []
    left_out: list[str] = []
    for connector in data.get("connectors", []):
        name = str(connector.get("name", ""))
        record = by_connector.get(name)
        if record is None:
            continue
        credential = connector.setdefault("azure", {}).setdefault("credential", {})
        if "certificate_path" in record:
            credential.pop("client_secret", None)
            credential.update({"kind": "certificate", "client_id": record["client_id"],
                               "certificate_path": record["certificate_path"]})
        elif "client_secret_file" in record:
            credential.pop("certificate_path", None)
            credential.update({"kind": "client_secret", "client_id": record["client_id"],
                               "client_secret": "${file:" + record["client_secret_file"] + "}"})
        else:
            left_out.append(f"{name}: its identity signs in where it runs: run `sentinel-signl4 check` there")
            continue
        kept.append(connector)
    data["connectors"] = kept
    return data, left_out


async def check_new_identities(config_text: str, config_path: Path, outcomes: Sequence[TenantOutcome], *,
                               echo: Callable[[str], None], env: Mapping[str, str] | None = None) -> bool:
    """Run ``check`` per tenant that apply provisioned (``config_text`` is the file at ``config_path``, an absolute
    path); False when a check ran and failed."""
    from sentinel_signl4.checks import run_checks

    environ = os.environ if env is None else env
    raw = tomllib.loads(config_text)
    all_ok = True
    for outcome in outcomes:
        if not outcome.ok or not outcome.identities:
            continue
        data, left_out = _checked_config(raw, outcome.identities)
        for note in left_out:
            echo(f"Check of tenant {outcome.tenant_id}: skipped {note}")
        if not data["connectors"]:
            continue
        names = ", ".join(str(c.get("name")) for c in data["connectors"])
        try:
            config = validate_config_data(data, source=str(config_path), env=environ)
        except ConfigError as exc:
            echo(f"Check of tenant {outcome.tenant_id} ({names}): skipped, the config is not complete yet:")
            for key, reason in exc.problems:
                echo(f"  {key}: {reason}" if key else f"  {reason}")
            continue
        config = resolve_store_paths(config, state_base(config_path.parent, environ))
        echo(f"Check of tenant {outcome.tenant_id} ({names}), with the new identity:")
        ok = await run_checks(config, echo=lambda line: echo(f"  {line}"))
        echo(f"Check of tenant {outcome.tenant_id}: {'OK' if ok else 'FAILED'}"
             + ("" if ok else " (a secret just created can take a minute to be accepted: run "
                              "`sentinel-signl4 check` again)"))
        all_ok = all_ok and ok
    return all_ok
