"""The operator console: its own Starlette app, served on ``[console]`` host and port (loopback by default).

Routes:

* ``GET /login``, ``POST /login``, ``POST /logout``: sessions (``console_auth.py``).
* ``GET /``: the overview (sorting and filtering by query parameters); ``GET /connectors/{name}``: one connector;
  ``GET /connectors/{name}/preview``: what it would page now, as the phone shows it (nothing is sent or written).
* ``POST /connectors/{name}/retry`` and ``/discard``: admin only; the same store operations as ``outbox retry`` /
  ``outbox discard``, with the same audit event.
* ``POST /pauses`` and ``/pauses/clear``: admin only; set or clear a maintenance window (``pause_ops.py``, as the
  ``pause`` CLI). Windows in force are shown on every page.
* ``GET /status``, ``GET /status.json``: the status cards and their JSON (``dashboard.py``), behind the login too.
* ``GET /metrics``, ``GET /healthz``: Prometheus and liveness, unauthenticated (read-only, no secret in them;
  reachable only where the console listener is).

Every route goes through ``_guard``: a reading route needs a user (session, or Basic auth for scripts); a
state-changing one needs a session, its CSRF token in the form, a same-origin ``Origin`` when the browser sends
one, and the admin role where it changes the store. ``tests/web/test_console_guard.py`` walks every route to
prove there is no other way in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TextIO

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sentinel_signl4 import __version__
from sentinel_signl4.domain.phone_view import format_phone_view
from sentinel_signl4.domain.spans import ago_text, span_text
from sentinel_signl4.engine.health import HealthState
from sentinel_signl4.engine.preview import preview
from sentinel_signl4.operator_actions import audit, outcome, why_not
from sentinel_signl4.pause_ops import PauseError, clear_pause, new_pause, parse_until
from sentinel_signl4.store.pauses import Pause
from sentinel_signl4.web.console_auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    ConsoleAuth,
    LoginThrottled,
    Principal,
    csrf_matches,
)
from sentinel_signl4.web.console_views import collect_detail, collect_overview, select_rows
from sentinel_signl4.web.context import WebContext, json_response
from sentinel_signl4.web.dashboard import Dashboard
from sentinel_signl4.web.health import HealthEndpoints

__all__ = ["CONSOLE_HEADERS", "build_console_app"]

CONSOLE_HEADERS = {
    # Today's status-page policy, with forms allowed to post to this origin only.
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    # Not "no-referrer": with it, browsers send "Origin: null" on the console's own form posts, which the
    # same-origin check must refuse. "same-origin" still sends nothing to other sites.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
MAX_FORM_BYTES = 64 * 1024
_LOCAL_PATH = re.compile(r"/(?:[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*)?")
_SAFE_METHODS = ("GET", "HEAD")
_DONE_MESSAGES = {
    "retry": "{n} dead row(s) queued again; the connector's next cycle sends them.",
    "discard": "{n} row(s) discarded.",
}

Handler = Callable[[Request, Principal, Mapping[str, str]], Awaitable[Response]]

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("sentinel_signl4.web", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)


def _address(request: Request) -> str | None:
    """The client's address as the listener saw it (the console is not meant to sit behind a proxy)."""
    return request.client.host if request.client is not None else None


class _Refused(Exception):
    def __init__(self, status: int, text: str, retry_after: int | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.retry_after = retry_after


class Console:
    """The console's endpoints over one ``WebContext``."""

    def __init__(self, ctx: WebContext, auth: ConsoleAuth, *, audit_stream: TextIO | None = None) -> None:
        self.ctx = ctx
        self.auth = auth
        self._audit_stream = audit_stream
        self._env = _ENV.overlay()
        self._env.filters["redact"] = lambda value: ctx.redactor.redact(str(value))
        self._env.filters["as_json"] = lambda value: json.dumps(value, ensure_ascii=False, default=str)

    # -- plumbing ---------------------------------------------------------------------------------------------

    async def render(self, name: str, status: int = 200, *, user: Principal | None, **values: Any) -> HTMLResponse:
        now = self.ctx.clock()
        active: list[Pause] = []
        if user is not None:  # shown on every page while in force; a store failure only hides the banner
            with contextlib.suppress(Exception):
                active = [p for p in await self.ctx.store.pauses(now) if p.active(now)]
        page = self._env.get_template(name).render(
            user=user, version=__version__, now=now, active_pauses=active, back_to=values.pop("back_to", "/"),
            flash=values.pop("flash", None),
            problem=values.pop("problem", None), ago=lambda then: ago_text(then, now), age=span_text, **values)
        return HTMLResponse(page, status_code=status, headers=CONSOLE_HEADERS)

    def audit(self, actor: str, action: str, **details: Any) -> None:
        audit(redactor=self.ctx.redactor, fmt=self.ctx.config.logging.format, actor=actor, action=action,
              stream=self._audit_stream, via="console", **details)

    def guard(self, handler: Handler, *, role: Literal["read", "admin"] = "read",
              changes_state: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the console's checks (see the module)."""

        async def endpoint(request: Request) -> Response:
            try:
                principal = await self._principal(request, changes_state)
                if principal is None:
                    if changes_state or request.url.path.endswith(".json"):
                        raise _Refused(401, "sign in first")
                    return RedirectResponse("/login", status_code=303, headers=CONSOLE_HEADERS)
                form: Mapping[str, str] = {}
                if changes_state:
                    form = await self._checked_form(request, principal)
                if role == "admin" and not principal.admin:
                    raise _Refused(403, "this needs the admin role")
            except _Refused as refused:
                return await self._refusal(request, refused)
            return await handler(request, principal, form)

        return endpoint

    async def _principal(self, request: Request, changes_state: bool) -> Principal | None:
        principal = self.auth.session(request.cookies.get(SESSION_COOKIE))
        if principal is None and not changes_state:
            try:
                principal = await self.auth.basic(request.headers.get("authorization"), _address(request))
            except LoginThrottled as throttled:
                raise _Refused(429, str(throttled), throttled.retry_after) from None
        return principal

    async def _checked_form(self, request: Request, principal: Principal) -> Mapping[str, str]:
        self._same_origin(request)
        form = await _read_form(request)
        if not csrf_matches(principal.csrf, form.get("csrf")):
            raise _Refused(403, "missing or wrong CSRF token: reload the page and try again")
        return form

    @staticmethod
    def _same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is None:
            return  # an old browser or a script; the CSRF token still protects the request
        host = request.headers.get("host", "")
        if origin == "null" or urllib.parse.urlsplit(origin).netloc != host:
            raise _Refused(403, "cross-origin request refused")

    async def _refusal(self, request: Request, refused: _Refused) -> Response:
        headers: dict[str, str] = {}
        if refused.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="sentinel-signl4 console"'
        if refused.retry_after is not None:
            headers["Retry-After"] = str(refused.retry_after)
        if request.method in _SAFE_METHODS and request.url.path.endswith(".json"):
            return json_response(refused.status, {"error": refused.text}, headers or None)
        response = await self.render("message.html", refused.status, user=None, heading="Refused", text=refused.text,
                                     back="/login" if refused.status in (401, 429) else "/")
        response.headers.update(headers)
        return response

    # -- sessions ---------------------------------------------------------------------------------------------

    async def login_page(self, request: Request, *, problem: str | None = None, status: int = 200) -> Response:
        token = _token()
        response = await self.render("login.html", status, user=None, login_csrf=token, has_users=self.auth.has_users,
                               problem=problem)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/login")
        return response

    async def login_form(self, request: Request) -> Response:
        return await self.login_page(request)

    async def login(self, request: Request) -> Response:
        try:
            self._same_origin(request)
            form = await _read_form(request)
        except _Refused as refused:
            return await self._refusal(request, refused)
        if not csrf_matches(request.cookies.get(LOGIN_COOKIE), form.get("login_csrf")):
            return await self.login_page(request, problem="The sign-in form expired; please try again.",
                                         status=403)
        name = form.get("username", "")[:64]
        try:
            principal = await self.auth.login(name, form.get("password", ""), _address(request))
        except LoginThrottled as throttled:
            self.audit(name, "login", outcome="throttled", retry_after_s=throttled.retry_after)
            response = await self.login_page(request, problem=f"Too many failed sign-ins. Try again in "
                                             f"{throttled.retry_after} s.", status=429)
            response.headers["Retry-After"] = str(throttled.retry_after)
            return response
        if principal is None:
            self.audit(name, "login", outcome="refused")
            return await self.login_page(request, problem="Wrong user name or password.", status=401)
        self.audit(principal.name, "login", outcome="ok", role=principal.role)
        response = RedirectResponse("/", status_code=303, headers=CONSOLE_HEADERS)
        response.set_cookie(SESSION_COOKIE, principal.session or "", httponly=True, samesite="strict", path="/",
                            max_age=int(self.ctx.config.console.session_ttl.total_seconds()))
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(self, request: Request, principal: Principal, _form: Mapping[str, str]) -> Response:
        if principal.session:
            self.auth.logout(principal.session)
        self.audit(principal.name, "logout", outcome="ok")
        response = RedirectResponse("/login", status_code=303, headers=CONSOLE_HEADERS)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages ------------------------------------------------------------------------------------------------

    async def overview(self, request: Request, principal: Principal, _form: Mapping[str, str]) -> Response:
        params = request.query_params
        sort = params.get("sort", "state")
        desc = params.get("dir", "asc") == "desc"
        state, q = params.get("state", ""), params.get("q", "")[:100]
        rows = await collect_overview(self.ctx)
        chosen = select_rows(rows, sort=sort, descending=desc, state=state, query=q)

        def query_for(key: str) -> str:
            reverse = "asc" if (key == sort and desc) or (key != sort) else "desc"
            return urllib.parse.urlencode({"sort": key, "dir": reverse, "state": state, "q": q})

        return await self.render("overview.html", user=principal, rows=chosen, total=len(rows), shown=len(chosen),
                           sort=sort, desc=desc, state=state, q=q, query_for=query_for,
                           states=[s.value for s in HealthState])

    async def connector(self, request: Request, principal: Principal, _form: Mapping[str, str]) -> Response:
        cfg = self._connector(request)
        if cfg is None:
            return await self.render("message.html", 404, user=principal, heading="Not found",
                               text="No connector of that name.", back="/")
        detail = await collect_detail(self.ctx, cfg)
        done, n = request.query_params.get("done", ""), request.query_params.get("n", "0")
        flash = _DONE_MESSAGES[done].format(n=int(n) if n.isdigit() else 0) if done in _DONE_MESSAGES else None
        refused = request.query_params.get("refused", "")
        problem = "Some rows were refused (they changed meanwhile); see the tables below." if refused else None
        return await self.render("connector.html", user=principal, d=detail, flash=flash, problem=problem,
                                 back_to=f"/connectors/{cfg.name}")

    def _connector(self, request: Request) -> Any:
        name = request.path_params.get("name", "")
        return next((c for c in self.ctx.config.connectors if c.name == name), None)

    # -- actions ----------------------------------------------------------------------------------------------

    async def retry(self, request: Request, principal: Principal, form: Mapping[str, str]) -> Response:
        return await self._act(request, principal, form, "retry")

    async def discard(self, request: Request, principal: Principal, form: Mapping[str, str]) -> Response:
        return await self._act(request, principal, form, "discard")

    async def _act(self, request: Request, principal: Principal, form: Mapping[str, str],
                   action: Literal["retry", "discard"]) -> Response:
        cfg = self._connector(request)
        key, reason = form.get("key", ""), form.get("reason", "").strip()[:500]
        if cfg is None or not key:
            return await self.render("message.html", 404, user=principal, heading="Not found",
                               text="No such connector or outbox row.", back="/")
        if action == "discard" and not reason:
            return await self.render("message.html", 400, user=principal, heading="Reason needed",
                               text="Discarding needs a reason (it is kept with the row and in the audit log).",
                               back=f"/connectors/{cfg.name}")
        store, now = self.ctx.store, self.ctx.clock()
        if action == "retry":
            changed = await store.requeue_dead(now, keys=[key], connector=cfg.name)
        else:
            changed = await store.discard_actions(now, reason, keys=[key], connector=cfg.name, by=principal.name)
        refused = {} if changed else {key: await why_not(store, key, cfg.name,
                                                         "retried" if action == "retry" else "discarded")}
        self.audit(principal.name, action, keys=changed, outcome=outcome(changed, refused), reason=reason,
                   refused=refused, connector=cfg.name)
        query = urllib.parse.urlencode({"done": action, "n": len(changed), **({"refused": 1} if refused else {})})
        return RedirectResponse(f"/connectors/{cfg.name}?{query}", status_code=303, headers=CONSOLE_HEADERS)


    async def preview(self, request: Request, principal: Principal, _form: Mapping[str, str]) -> Response:
        cfg = self._connector(request)
        forward = self.ctx.forwards.get(cfg.name) if cfg is not None else None
        if cfg is None or forward is None:
            return await self.render("message.html", 404, user=principal, heading="Not found",
                                     text="No connector of that name runs in this process.", back="/")
        problem, items = None, []
        try:
            async with asyncio.timeout(30):
                items = await preview(forward, self.ctx.clock())
        except Exception as exc:  # noqa: BLE001 - shown to the operator instead of a 500
            problem = self.ctx.redactor.redact(f"The preview failed: {type(exc).__name__}: {exc}")
        views = [(item, format_phone_view(item.request)) for item in items]
        return await self.render("preview.html", user=principal, connector_name=cfg.name, views=views, problem=problem,
                                 back_to=f"/connectors/{cfg.name}/preview")

    # -- maintenance windows ----------------------------------------------------------------------------------

    async def pause(self, request: Request, principal: Principal, form: Mapping[str, str]) -> Response:
        now = self.ctx.clock()
        connector = form.get("connector", "")
        back = f"/connectors/{connector}" if connector != "*" else "/"
        try:
            ends = parse_until(now, until=form.get("until") or None, duration=form.get("duration") or None)
            severities = [s for s in form.get("severities", "").replace(" ", "").split(",") if s]
            pause = new_pause(self.ctx.config, connector=connector, severities=severities, ends_at=ends,
                              mode=form.get("mode", "skip"), reason=form.get("reason", ""), by=principal.name,
                              now=now)
        except PauseError as exc:
            return await self.render("message.html", 400, user=principal, heading="Cannot pause", text=str(exc),
                                     back=back if connector in self._names() or connector == "*" else "/")
        await self.ctx.store.add_pause(pause)
        self.audit(principal.name, "pause", keys=[pause.id], outcome="ok", reason=pause.reason,
                   connector=pause.connector, severities=list(pause.severities), mode=pause.mode,
                   until=pause.ends_at.isoformat())
        return RedirectResponse(back, status_code=303, headers=CONSOLE_HEADERS)

    async def unpause(self, request: Request, principal: Principal, form: Mapping[str, str]) -> Response:
        pause_id = form.get("pause", "")
        cleared, released = await clear_pause(self.ctx.store, self.ctx.config, pause_id, now=self.ctx.clock(),
                                              by=principal.name)
        self.audit(principal.name, "unpause", keys=[pause_id], outcome="ok" if cleared else "nothing_to_do",
                   released=released)
        back = form.get("back", "/")
        # Only a path of this console: never "//host" or "/\\host", which browsers follow to another site.
        return RedirectResponse(back if _LOCAL_PATH.fullmatch(back) else "/", status_code=303,
                                headers=CONSOLE_HEADERS)

    def _names(self) -> set[str]:
        return {c.name for c in self.ctx.config.connectors}


def _token() -> str:
    return secrets.token_urlsafe(32)


async def _read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only kind the console's forms send), first value of
    each field."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise _Refused(415, "expected a form (application/x-www-form-urlencoded)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _Refused(413, "form too large")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "malformed form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def build_console_app(ctx: WebContext, auth: ConsoleAuth | None = None, *,
                      audit_stream: TextIO | None = None) -> Starlette:
    """The console app for ``ctx`` (users and session lifetime from ``ctx.config.console``)."""
    console = Console(ctx, auth or ConsoleAuth(ctx.config.console, ctx.clock), audit_stream=audit_stream)
    dashboard = Dashboard(ctx)
    probes = HealthEndpoints(ctx)
    guard = console.guard

    async def status_page(request: Request, _p: Principal, _f: Mapping[str, str]) -> Response:
        return await dashboard.page(request)

    async def status_json(request: Request, _p: Principal, _f: Mapping[str, str]) -> Response:
        return await dashboard.json(request)

    routes = [
        Route("/login", console.login_form, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", guard(console.logout, changes_state=True), methods=["POST"]),
        Route("/", guard(console.overview), methods=["GET"]),
        Route("/connectors/{name}", guard(console.connector), methods=["GET"]),
        Route("/connectors/{name}/preview", guard(console.preview), methods=["GET"]),
        Route("/connectors/{name}/retry", guard(console.retry, role="admin", changes_state=True), methods=["POST"]),
        Route("/connectors/{name}/discard", guard(console.discard, role="admin", changes_state=True),
              methods=["POST"]),
        Route("/pauses", guard(console.pause, role="admin", changes_state=True), methods=["POST"]),
        Route("/pauses/clear", guard(console.unpause, role="admin", changes_state=True), methods=["POST"]),
        Route("/status", guard(status_page), methods=["GET"]),
        Route("/status.json", guard(status_json), methods=["GET"]),
        Route("/metrics", probes.metrics, methods=["GET"]),
        Route("/healthz", probes.healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    # A trailing "/" gets 404, not a 307 to the route (which a client would follow, re-sending the same body).
    app.router.redirect_slashes = False
    return app
