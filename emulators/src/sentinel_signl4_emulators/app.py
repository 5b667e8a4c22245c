"""One ASGI app serving every emulator on a single origin, routed by path.

==============================================  ============================================================
``/_control/signl4|graph|loganalytics/…``       each service's own control plane
``/_control/…``                                 shared control plane (``control``); never faulted
``/subscriptions/…``                            ARM: Microsoft Sentinel incidents (``sentinel.routes``)
``/webhook/…``, ``/api/…``                      SIGNL4 inbound webhook and REST API (``signl4.routes``)
``/v1.0/…``                                     Microsoft Graph security and users (``graph.routes``)
``/v1/…``                                       Log Analytics query (``loganalytics.routes``)
``/secrets/…``                                  Azure Key Vault secrets (``keyvault.routes``)
everything else                                 Entra ID ``/{tenant}/…`` — matched last so the tenant
                                                segment cannot swallow another service's path
==============================================  ============================================================

The longest matching prefix wins, at a path-segment boundary; a new emulator appends its
:class:`ServiceMount` in :func:`service_mounts`.

The whole app is wrapped in :class:`~sentinel_signl4_emulators.common.faults.FaultMiddleware`. In-process tests use
:class:`EmulatorTransport` (an ``httpx`` transport that turns a dropped connection into the transport error a
real client sees); ``server`` serves the same app over HTTPS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from sentinel_signl4_emulators.authorization.routes import authorization_routes, is_authorization_path
from sentinel_signl4_emulators.common.faults import ConnectionDropped, FaultMiddleware
from sentinel_signl4_emulators.control import control_routes
from sentinel_signl4_emulators.entra.routes import entra_routes
from sentinel_signl4_emulators.graph.directory import graph_directory_routes
from sentinel_signl4_emulators.graph.routes import graph_routes
from sentinel_signl4_emulators.keyvault.routes import keyvault_routes
from sentinel_signl4_emulators.loganalytics.routes import loganalytics_routes
from sentinel_signl4_emulators.sentinel.routes import sentinel_routes
from sentinel_signl4_emulators.signl4.routes import build_signl4_app
from sentinel_signl4_emulators.state import EmulatorState

__all__ = [
    "EXCEPTION_HANDLERS",
    "EmulatorState",
    "EmulatorTransport",
    "ServiceMount",
    "build_app",
    "service_mounts",
]


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
    mounts.append(ServiceMount("signl4", ("/webhook", "/api", "/_control/signl4"), build_signl4_app(state.signl4)))
    return mounts


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
