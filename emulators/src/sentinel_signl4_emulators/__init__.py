"""Faithful local emulators of every remote API sentinel-signl4 calls (Entra ID, ARM Sentinel and RBAC, Graph,
Log Analytics, SIGNL4).

One subpackage per service keeps its state model (``model.py``) apart from its wire format (``routes.py``);
``common`` holds what they share. :func:`build_app` serves them all on one origin with a control plane and fault
injection, in-process (:class:`EmulatorTransport`) or over HTTPS (:class:`EmulatorServer`). Nothing is built at
import time, and nothing of ``sentinel_signl4`` is imported.
"""

from sentinel_signl4_emulators.app import EmulatorState, EmulatorTransport, ServiceMount, build_app
from sentinel_signl4_emulators.common.faults import ConnectionDropped, FaultInjector, FaultRule
from sentinel_signl4_emulators.seed import DemoWorld, seed_demo
from sentinel_signl4_emulators.server import EmulatorServer, serve_forever

__all__ = [
    "ConnectionDropped",
    "DemoWorld",
    "EmulatorServer",
    "EmulatorState",
    "EmulatorTransport",
    "FaultInjector",
    "FaultRule",
    "ServiceMount",
    "build_app",
    "seed_demo",
    "serve_forever",
]
