"""``sentinel-signl4 check``: per connector, OK or an error precise enough to fix. Sends no alert."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from sentinel_signl4.bootstrap import ConnectorParts, build_runtime
from sentinel_signl4.clients.signl4 import Signl4AccessReport
from sentinel_signl4.config import Config
from sentinel_signl4.engine.enrich import SentinelEnricher
from sentinel_signl4.errors import RemoteError
from sentinel_signl4.logs import configure_logging

__all__ = ["run_checks"]


async def run_checks(config: Config, *, echo: Callable[[str], None] = print) -> bool:
    redactor = configure_logging(level="error", fmt=config.logging.format, secrets=config.secrets())
    runtime = await build_runtime(config, migrate=False)
    all_ok = True
    try:
        for name, parts in runtime.connectors.items():
            for label, step in _steps(parts):
                try:
                    result = await step()
                except RemoteError as exc:
                    all_ok = False
                    echo(redactor.redact(f"[{name}] {label}: ERROR: {exc.message}"))
                    break
                except Exception as exc:  # noqa: BLE001 - report anything else precisely, never a traceback
                    all_ok = False
                    echo(redactor.redact(f"[{name}] {label}: ERROR: {type(exc).__name__}: {exc}"))
                    break
                # SIGNL4 reports each REST call it tried, and what keeps a configured mode from working.
                problems = result.problems if isinstance(result, Signl4AccessReport) else ()
                echo(redactor.redact(f"[{name}] {label}: " + (f"ERROR: {'; '.join(problems)}" if problems else "OK")))
                for line in result.lines() if isinstance(result, Signl4AccessReport) else ():
                    echo(redactor.redact(f"[{name}]   {line}"))
                if problems:
                    all_ok = False
                    break
    finally:
        await runtime.aclose()
    echo("All connectors OK." if all_ok else "Some checks failed.")
    return all_ok


def _steps(parts: ConnectorParts) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    """What to prove for one connector, in order; the first failure ends its checks."""
    cfg = parts.config
    endpoints = cfg.azure.resolved_endpoints
    if cfg.source == "graph":
        permission = ("SecurityAlert.ReadWrite.All" if cfg.graph.resource == "alerts"
                      else "SecurityIncident.ReadWrite.All")
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("Entra ID token (Microsoft Graph)", partial(parts.tokens.token, endpoints.scope("graph"))),
            (f"Graph security {cfg.graph.resource} ({permission})", parts.source.check_access),
        ]
    else:
        steps = [
            ("Entra ID token", partial(parts.tokens.token, endpoints.scope("resource_manager"))),
            ("Sentinel workspace access", parts.source.check_access),
        ]
    enricher = parts.runtime.forward.enricher
    if isinstance(enricher, SentinelEnricher) and enricher.logs is not None:
        # Enrichment failures never block a page, so without this check a missing role would go unnoticed.
        steps.append(("Log Analytics query (enrichment)", enricher.logs.check_access))
    if parts.graph is not None and cfg.sync.assign_owner_on and not cfg.sync.owner_map:
        # The owner lookup is the only way to name an owner then: without User.Read.All nobody gets assigned.
        steps.append(("Graph owner lookup (User.Read.All)", parts.graph.check_user_access))
    # Polling mode reads annotations, so both annotation paths are probed then (v1 path, v2 timeline).
    steps.append(("SIGNL4 webhook / API",
                  partial(parts.signl4.check_access, annotations=cfg.sync_mode in ("poll", "both"))))
    return steps
