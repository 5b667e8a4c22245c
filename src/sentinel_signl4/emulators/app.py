"""One ASGI app serving every emulator on a single origin, routed by path.

==============================================  ============================================================
``/_control/signl4|graph|loganalytics/…``       each service's own control plane
``/_control/…``                                 shared control plane (``emulators.control``); never faulted
``/subscriptions/…``                            ARM: Microsoft Sentinel incidents (``emulators.sentinel``)
``/webhook/…``, ``/api/…``                      SIGNL4 inbound webhook and REST API (``emulators.signl4``)
``/v1.0/…``                                     Microsoft Graph security and users (``emulators.graph``)
``/v1/…``                                       Log Analytics query (``emulators.loganalytics``)
``/secrets/…``                                  Azure Key Vault secrets (``emulators.keyvault``)
everything else                                 Entra ID ``/{tenant}/…`` — matched last so the tenant
                                                segment cannot swallow another service's path
==============================================  ============================================================

The longest matching prefix wins, at a path-segment boundary; a new emulator appends its
:class:`ServiceMount` in :func:`service_mounts`.

The whole app is wrapped in :class:`~sentinel_signl4.emulators.faults.FaultMiddleware`. In-process tests use
:class:`EmulatorTransport` (an ``httpx`` transport that turns a dropped connection into the transport error a
real client sees); ``emulators.server`` serves the same app over HTTPS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from sentinel_signl4.emulators.authorization import authorization_routes, is_authorization_path
from sentinel_signl4.emulators.authorization_model import AuthorizationModel
from sentinel_signl4.emulators.control import control_routes
from sentinel_signl4.emulators.entra import entra_routes
from sentinel_signl4.emulators.entra_model import EntraModel
from sentinel_signl4.emulators.faults import ConnectionDropped, FaultInjector, FaultMiddleware
from sentinel_signl4.emulators.graph import graph_routes
from sentinel_signl4.emulators.graph_directory import graph_directory_routes
from sentinel_signl4.emulators.graph_directory_model import DirectoryModel
from sentinel_signl4.emulators.graph_model import GraphModel
from sentinel_signl4.emulators.keyvault import KeyVaultModel, keyvault_routes
from sentinel_signl4.emulators.loganalytics import loganalytics_routes
from sentinel_signl4.emulators.loganalytics_model import LogAnalyticsModel
from sentinel_signl4.emulators.sentinel import sentinel_routes
from sentinel_signl4.emulators.sentinel_model import SentinelModel
from sentinel_signl4.emulators.signl4_model import Signl4Model

__all__ = [
    "EXCEPTION_HANDLERS",
    "EmulatorState",
    "EmulatorTransport",
    "ServiceMount",
    "build_app",
    "service_mounts",
]


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
    keyvault: KeyVaultModel = field(default_factory=KeyVaultModel)
    loganalytics: LogAnalyticsModel = field(init=False)
    authorization: AuthorizationModel = field(init=False)
    directory: DirectoryModel = field(init=False)

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


@dataclass(frozen=True, slots=True)
class ServiceMount:
    """An ASGI app serving the paths under ``prefixes``; it sees the full, unmodified path."""

    name: str
    prefixes: tuple[str, ...]
    app: ASGIApp

    def serves(self, path: str) -> int:
        """Length of the longest prefix matching ``path`` at a segment boundary, 0 if none."""
        return max(
            (len(p) for p in self.prefixes if path == p or path.startswith(p.rstrip("/") + "/")), default=0
        )


class _ReraiseResponse(Response):
    """Lets :class:`ConnectionDropped` escape Starlette's ServerErrorMiddleware without a 500 being sent."""

    def __init__(self, exc: ConnectionDropped) -> None:
        super().__init__()
        self.exc = exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise self.exc


async def _server_error(_request: Request, exc: Exception) -> Response:
    if isinstance(exc, ConnectionDropped):
        return _ReraiseResponse(exc)
    return JSONResponse(
        {"error": {"code": "InternalServerError", "message": f"Emulator error: {type(exc).__name__}"}},
        status_code=500,
    )


#: Exception handlers for an emulator's Starlette app: an unexpected error becomes a JSON 500, while
#: ConnectionDropped propagates to the server so it can drop the connection instead of answering.
EXCEPTION_HANDLERS: Mapping[Any, Callable[[Request, Exception], Any]] = {Exception: _server_error}


def _starlette(routes: Sequence[BaseRoute]) -> Starlette:
    return Starlette(routes=list(routes), exception_handlers=dict(EXCEPTION_HANDLERS))


def service_mounts(state: EmulatorState) -> list[ServiceMount]:
    """The services on the shared origin except Entra (the fallback). New emulators append theirs here."""
    mounts = [
        ServiceMount("control", ("/_control",), _starlette(control_routes(state))),
        ServiceMount("sentinel", ("/subscriptions",), _ArmRouter(
            _starlette(authorization_routes(state.entra, state.sentinel, state.authorization)),
            _starlette(sentinel_routes(state.entra, state.sentinel)))),
        ServiceMount("graph", ("/v1.0", "/_control/graph"), _starlette(graph_routes(state.graph, state.entra))),
        ServiceMount("graph-directory", ("/v1.0/servicePrincipals", "/v1.0/applications"),
                     _starlette(graph_directory_routes(state.entra, state.directory))),
        ServiceMount("loganalytics", ("/v1", "/_control/loganalytics"),
                     _starlette(loganalytics_routes(state.loganalytics, state.entra))),
        ServiceMount("keyvault", ("/secrets",), _starlette(keyvault_routes(state.keyvault, state.entra))),
    ]
    signl4 = _signl4_app(state)
    if signl4 is not None:
        mounts.append(ServiceMount("signl4", ("/webhook", "/api", "/_control/signl4"), signl4))
    return mounts


def _signl4_app(state: EmulatorState) -> ASGIApp | None:
    # Imported lazily: the SIGNL4 emulator is developed separately and may be absent from a checkout.
    try:
        module = importlib.import_module("sentinel_signl4.emulators.signl4")
    except ModuleNotFoundError:
        return None
    app: ASGIApp = module.build_signl4_app(state.signl4)
    return app


class _ArmRouter:
    """ARM's one origin: ``…/providers/Microsoft.Authorization/…`` to RBAC, everything else to Sentinel."""

    def __init__(self, authorization: ASGIApp, sentinel: ASGIApp) -> None:
        self.authorization = authorization
        self.sentinel = sentinel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self.authorization if is_authorization_path(scope.get("path", "")) else self.sentinel
        await target(scope, receive, send)


class _PathDispatcher:
    """Routes each request to the mount with the longest matching prefix, else to ``fallback``."""

    def __init__(self, mounts: Sequence[ServiceMount], fallback: ASGIApp) -> None:
        self.mounts = list(mounts)
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path: str = scope.get("path", "")
        best, best_length = self.fallback, 0
        for mount in self.mounts:
            length = mount.serves(path)
            if length > best_length:
                best, best_length = mount.app, length
        await best(scope, receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    # The emulators hold no resources that need startup or shutdown.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_app(state: EmulatorState, *, extra_mounts: Sequence[ServiceMount] = ()) -> ASGIApp:
    """The complete emulator app for ``state``: every service, the control plane, fault injection."""
    dispatcher = _PathDispatcher([*service_mounts(state), *extra_mounts], _starlette(entra_routes(state.entra)))
    return FaultMiddleware(dispatcher, state.faults)


class EmulatorTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` over the emulator app, with connection drops surfaced like a real server's.

    A fault that drops the connection raises :class:`ConnectionDropped` inside the app; a client talking to a
    real server would see ``httpx.RemoteProtocolError`` ("Server disconnected without sending a response."),
    so that is what this transport raises.
    """

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self._inner = httpx.ASGITransport(app=app, client=client)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()
