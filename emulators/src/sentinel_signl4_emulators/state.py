"""The emulators' shared state: one model per service, the fault injector and the clock they share.

Kept apart from :mod:`sentinel_signl4_emulators.app` so that the control plane and the seeds, which the app serves,
can use the state without importing the app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sentinel_signl4_emulators.authorization.model import AuthorizationModel
from sentinel_signl4_emulators.common.faults import FaultInjector
from sentinel_signl4_emulators.entra.model import EntraModel
from sentinel_signl4_emulators.graph.directory_model import DirectoryModel
from sentinel_signl4_emulators.graph.model import GraphModel
from sentinel_signl4_emulators.keyvault.routes import KeyVaultModel
from sentinel_signl4_emulators.loganalytics.model import LogAnalyticsModel
from sentinel_signl4_emulators.sentinel.model import SentinelModel
from sentinel_signl4_emulators.signl4.model import Signl4Model

__all__ = ["EmulatorState"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class EmulatorState:
    """Everything the emulators know, shared by the app, the control plane and tests."""

    entra: EntraModel
    sentinel: SentinelModel
    signl4: Signl4Model
    faults: FaultInjector
    clock: Callable[[], datetime] = field(default=_utc_now)
    graph: GraphModel = field(default_factory=GraphModel)
    loganalytics: LogAnalyticsModel = field(init=False)
    authorization: AuthorizationModel = field(init=False)
    directory: DirectoryModel = field(init=False)
    keyvault: KeyVaultModel = field(default_factory=KeyVaultModel)

    def __post_init__(self) -> None:
        # Derived from the Sentinel model: its SecurityAlert rows are the seeded incidents' alerts.
        self.loganalytics = LogAnalyticsModel(self.sentinel, clock=self.clock)
        # Custom roles (Microsoft.Authorization) grant Sentinel and Log Analytics actions next to the built-in roles.
        self.authorization = AuthorizationModel(principal_exists=self._principal_exists)
        self.sentinel.custom_roles = self.authorization
        self.loganalytics.custom_roles = self.authorization
        # Applications and service principals created through Graph (provisioning); consent lands in the Graph model.
        self.directory = DirectoryModel(self.entra, self.graph,
                                        on_principal_created=self.authorization.principal_created)

    def _principal_exists(self, object_id: str) -> bool:
        return any(app.object_id.lower() == object_id.lower()
                   for tenant in self.entra.tenants() for app in tenant.apps.values())

    @classmethod
    def new(cls, *, clock: Callable[[], datetime] = _utc_now, fault_seed: int | None = None) -> EmulatorState:
        """Fresh, empty emulators sharing one clock."""
        entra = EntraModel(clock=clock)
        return cls(
            entra=entra,
            sentinel=SentinelModel(entra, clock=clock),
            signl4=Signl4Model(clock),
            faults=FaultInjector(seed=fault_seed),
            clock=clock,
            graph=GraphModel(clock=clock),
        )

    def reset(self) -> None:
        """Forget everything, in place (the running app keeps its references)."""
        self.faults.clear()
        self.entra.reset()
        self.sentinel.reset()
        self.signl4.reset()
        self.graph.reset()
        self.loganalytics.reset()
        self.authorization.reset()
        self.directory.reset()
        self.keyvault.reset()
