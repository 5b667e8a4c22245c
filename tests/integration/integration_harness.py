"""The integration-test harness: the emulators, a seeded world and runtimes built from real config text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel_signl4.bootstrap import Runtime, build_runtime
from sentinel_signl4.config import Config, parse_config
from sentinel_signl4.demo_config import emulator_config
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.seed import DemoWorld
from sentinel_signl4_emulators.server import EmulatorServer

__all__ = ["Harness"]


@dataclass
class Harness:
    server: EmulatorServer
    world: DemoWorld
    tmp: Path
    runtimes: list[Runtime] = field(default_factory=list)

    @property
    def state(self) -> EmulatorState:
        return self.server.state

    def config_text(self, **kwargs: Any) -> str:
        kwargs.setdefault("store_url", f"sqlite:///{self.tmp / 'state.db'}")
        return emulator_config(self.world, self.server.base_url, ca_path=self.server.ca_path, **kwargs)

    def config(self, **kwargs: Any) -> Config:
        return parse_config(self.config_text(**kwargs), source="test.toml")

    async def runtime(self, **kwargs: Any) -> Runtime:
        runtime = await build_runtime(self.config(**kwargs))
        self.runtimes.append(runtime)
        return runtime

    def alerts(self, external_id: str | None = None) -> list[Any]:
        return self.state.signl4.list_alerts(external_id=external_id)

    def incidents(self) -> list[dict[str, Any]]:
        return self.state.sentinel.list_incidents(self.world.workspace)

    def incident(self, name: str) -> dict[str, Any]:
        return self.state.sentinel.get_incident(self.world.workspace, name)


