"""Faithful local emulators of every remote API the connector calls (Entra ID, ARM Sentinel, SIGNL4, …).

Each service keeps its state model (``*_model.py``) apart from its wire format; :func:`build_app` serves them all
on one origin with a control plane and fault injection, in-process (:class:`EmulatorTransport`) or over HTTPS
(:class:`EmulatorServer`). Nothing is built at import time.
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
