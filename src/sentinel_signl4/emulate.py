"""``sentinel-signl4 emulate``: serve the emulators over HTTPS and write a config that points at them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sentinel_signl4.demo_config import emulator_config
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.common.ca import CertPaths
from sentinel_signl4_emulators.seed import seed_demo
from sentinel_signl4_emulators.server import serve_forever

__all__ = ["serve"]


def serve(port: int, workdir: Path, *, echo: Callable[[str], None] = print, host: str = "127.0.0.1") -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    state = EmulatorState.new()
    world = seed_demo(state, datetime.now(UTC))

    def announce(base_url: str, certs: CertPaths) -> None:
        config_path = workdir / "config.toml"
        config_path.write_text(emulator_config(
            world, base_url, ca_path=certs.ca, store_url=f"sqlite:///{(workdir / 'state.db').resolve()}",
            server={"host": "127.0.0.1", "port": 8080, "public_url": "http://127.0.0.1:8080"},
            overrides={"sync": {"webhook_token": "emulator-webhook-token-0123456789"},
                       "connector": {"poll_interval": "10s"}},
        ), encoding="utf-8")
        echo(f"Emulators listening on {base_url}")
        echo(f"  Entra ID       {base_url}/{world.tenant_id}/oauth2/v2.0/token")
        echo(f"  Sentinel (ARM) {base_url}{world.workspace.resource_id}/providers/Microsoft.SecurityInsights/incidents")
        echo(f"  Log Analytics  {base_url}/v1/workspaces/{world.workspace_id}/query")
        echo(f"  Graph          {base_url}/v1.0/")
        echo(f"  SIGNL4         {base_url}/webhook/<team-secret>  and  {base_url}/api/v2/...")
        echo(f"  Control plane  {base_url}/_control/state")
        echo(f"CA certificate:  {certs.ca}")
        echo(f"Ready config:    {config_path}")
        echo(f"Try:             sentinel-signl4 check --config {config_path}")
        echo(f"                 sentinel-signl4 run --config {config_path}")
        echo("Stop with Ctrl-C.")

    serve_forever(state, workdir / "certs", host=host, port=port, log_level="warning", announce=announce)
