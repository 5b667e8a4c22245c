"""``sentinel-signl4 check``: per connector, OK or an error precise enough to fix. Sends no alert."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from sentinel_signl4.bootstrap import build_runtime
from sentinel_signl4.clients.errors import RemoteError
from sentinel_signl4.config import Config
from sentinel_signl4.logs import configure_logging

__all__ = ["run_checks"]


async def run_checks(config: Config, *, echo: Callable[[str], None] = print) -> bool:
    redactor = configure_logging(level="error", fmt=config.logging.format, secrets=config.secrets())
    runtime = await build_runtime(config, migrate=False)
    all_ok = True
    try:
        for name, parts in runtime.connectors.items():
            scope = parts.config.azure.resolved_endpoints.scope("resource_manager")
            steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
                ("Entra ID token", partial(parts.tokens.token, scope)),
                ("Sentinel workspace access", parts.source.check_access),
                ("SIGNL4 webhook / API", parts.pager.check_access),
            ]
            for label, step in steps:
                try:
                    await step()
                except RemoteError as exc:
                    all_ok = False
                    echo(redactor.redact(f"[{name}] {label}: ERROR: {exc.message}"))
                    break
                except Exception as exc:  # noqa: BLE001 - report anything else precisely, never a traceback
                    all_ok = False
                    echo(redactor.redact(f"[{name}] {label}: ERROR: {type(exc).__name__}: {exc}"))
                    break
                echo(f"[{name}] {label}: OK")
    finally:
        await runtime.aclose()
    echo("All connectors OK." if all_ok else "Some checks failed.")
    return all_ok
