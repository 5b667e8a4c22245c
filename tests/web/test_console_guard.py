"""No state-changing request reaches the console's store or audit log without a session, its CSRF token, a
same-origin request and the role: a table over every route of the app, and a property test over hostile requests.

The table is built from the app's own routes, so a route added later without the guard fails it."""

from __future__ import annotations

import io
import string
import weakref
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Route

from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.store.pauses import Pause
from store_fixtures import make_action
from web_world import ADMIN, ADMIN_PASSWORD, NOW, READER, READER_PASSWORD, Harness, audit_events, sign_in

SAFE = {"GET", "HEAD"}
# What a forged request may do at most: nothing but a refused sign-in attempt may be audited.
HARMLESS_AUDIT = {("login", "refused")}


def state_changing_routes(app: Starlette) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) - SAFE):
            found.append((method, route.path.replace("{name}", "alpha")))
    return found


async def prepare(harness: Harness) -> None:
    """A dead letter (d1) to retry or discard, and a pause in force (p-standing) to clear."""
    await harness.store.add_pause(Pause(id="p-standing", connector="alpha", severities=(), starts_at=NOW,
                                        ends_at=NOW + timedelta(hours=1), mode="hold", created_at=NOW))
    await harness.store.enqueue(make_action("d1", "alpha", payload={"incident_number": 7}), NOW)
    await harness.store.mark_in_flight("d1", NOW)
    await harness.store.mark_dead("d1", NOW, "PermanentError: HTTP 400")


async def dead_state(harness: Harness) -> ActionState:
    row = await harness.store.get_action("d1")
    assert row is not None
    return row.state


def test_the_app_has_exactly_the_known_state_changing_routes(console_app: Starlette) -> None:
    assert sorted(state_changing_routes(console_app)) == [
        ("POST", "/connectors/alpha/discard"), ("POST", "/connectors/alpha/retry"), ("POST", "/login"),
        ("POST", "/logout"), ("POST", "/pauses"), ("POST", "/pauses/clear")]


CASES = ["nobody", "basic_admin", "session_no_csrf", "session_wrong_csrf", "session_csrf_in_query",
         "session_cross_origin", "session_null_origin", "session_json_body", "reader_with_csrf"]


@pytest.mark.parametrize("case", CASES)
async def test_no_forged_request_changes_anything(console_app: Starlette, harness: Harness, audit_log: io.StringIO,
                                                  case: str) -> None:
    await prepare(harness)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=console_app), base_url="http://testserver",
                                 follow_redirects=False) as client:
        csrf = ""
        if case.startswith("session"):
            csrf = await sign_in(client, ADMIN, ADMIN_PASSWORD)
        elif case == "reader_with_csrf":
            csrf = await sign_in(client, READER, READER_PASSWORD)
        before = len(audit_events(audit_log))
        for method, path in state_changing_routes(console_app):
            if case == "reader_with_csrf" and path in ("/login", "/logout"):
                continue  # a reader may sign out (and in): only the admin routes are refused
            form: dict[str, str] = {"key": "d1", "reason": "forged", "username": ADMIN, "password": ADMIN_PASSWORD,
                                    "connector": "alpha", "duration": "1h", "mode": "skip", "pause": "p-standing"}
            headers: dict[str, str] = {}
            kwargs: dict[str, Any] = {}
            if case in ("session_cross_origin", "session_null_origin", "reader_with_csrf"):
                form["csrf"] = form["login_csrf"] = csrf
                headers["origin"] = "null" if case == "session_null_origin" else "https://evil.example"
                if case == "reader_with_csrf":
                    headers["origin"] = "http://testserver"
            elif case == "session_wrong_csrf":
                form["csrf"] = form["login_csrf"] = csrf[:-1] + ("A" if csrf[-1] != "A" else "B")
            elif case == "session_csrf_in_query":
                path += f"?csrf={csrf}&login_csrf={csrf}"
            if case == "basic_admin":
                kwargs["auth"] = (ADMIN, ADMIN_PASSWORD)
            if case == "session_json_body":
                response = await client.request(method, path, json={**form, "csrf": csrf}, headers=headers)
            else:
                response = await client.request(method, path, data=form, headers=headers, **kwargs)
            assert response.status_code in (401, 403, 415), (case, path, response.status_code)
            assert "s4s_console" not in response.headers.get("set-cookie", "")
        assert await dead_state(harness) is ActionState.DEAD
        assert [p.id for p in await harness.store.pauses(NOW)] == ["p-standing"]  # none added, none cleared
        assert audit_events(audit_log)[before:] == []


# -- property test ---------------------------------------------------------------------------------------------

printable = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " ", max_size=30)
ASPECTS = ("method", "path", "session", "csrf", "origin", "content_type", "role")


@st.composite
def hostile(draw: st.DrawFn) -> dict[str, Any]:
    """A request to retry d1 as the admin would send it, with one or more aspects replaced by something hostile
    (or, sometimes, none: the control that such a request does work). Sign-out and discard (both valid actions
    of a complete request) are covered by the table above."""
    broken = set(draw(st.sets(st.sampled_from(ASPECTS), max_size=3)))
    return {
        "broken": broken,
        "method": draw(st.sampled_from(["PUT", "PATCH", "DELETE", "POST"])) if "method" in broken else "POST",
        "path": (draw(st.sampled_from(["/login", "/connectors/nosuch/retry", "/connectors/alpha/retry/",
                                       "/connectors/alpha", "/", "/status", "/metrics", "/status.json"])
                      | printable.map(lambda t: "/" + t.lstrip("/")))
                 if "path" in broken else "/connectors/alpha/retry"),
        "auth": draw(st.sampled_from(["none", "basic", "garbage"])) if "session" in broken else "session",
        "csrf": draw(st.none() | printable) if "csrf" in broken else "real",
        "origin": draw(st.sampled_from(["null", "https://evil.example", "http://testserver.evil", "file://"])
                       | printable) if "origin" in broken else draw(st.sampled_from([None, "http://testserver"])),
        "content_type": (draw(st.sampled_from(["application/json", "text/plain", "multipart/form-data", ""])
                              | printable) if "content_type" in broken else "application/x-www-form-urlencoded"),
        "reader": "role" in broken,
        "extra": draw(st.dictionaries(st.sampled_from(["key", "reason", "csrf", "login_csrf", "x"]), printable,
                                      max_size=3)),
    }


_SIGNED_IN: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[str, tuple[str, str]]] = weakref.WeakKeyDictionary()


async def session_of(client: httpx.AsyncClient, reader: bool) -> tuple[str, str]:
    """(cookie, csrf) of a session of the reader or the admin, signed in once per test."""
    cache = _SIGNED_IN.setdefault(client, {})
    who = READER if reader else ADMIN
    if who not in cache:
        client.cookies.clear()
        csrf = await sign_in(client, who, READER_PASSWORD if reader else ADMIN_PASSWORD)
        cache[who] = (client.cookies["s4s_console"], csrf)
        client.cookies.clear()
    return cache[who]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=hostile())
async def test_only_a_complete_admin_request_changes_the_store(browser: httpx.AsyncClient, harness: Harness,
                                                               audit_log: io.StringIO,
                                                               request: dict[str, Any]) -> None:
    if await harness.store.get_action("d1") is None:
        await prepare(harness)
    cookie, csrf = await session_of(browser, request["reader"])
    fields = dict(request["extra"])
    if request["csrf"] == "real":
        fields["csrf"] = csrf
    elif request["csrf"] is None:
        fields.pop("csrf", None)
    else:
        fields["csrf"] = request["csrf"]
    fields["key"] = "d1"
    headers = {"content-type": request["content_type"]}
    if request["origin"] is not None:
        headers["origin"] = request["origin"]
    if request["auth"] == "session":
        headers["cookie"] = f"s4s_console={cookie}"
    if request["auth"] == "garbage":
        headers["cookie"] = f"s4s_console={cookie[:-2]}xx"
    if request["auth"] == "basic":
        headers["authorization"] = httpx.BasicAuth(ADMIN, ADMIN_PASSWORD)._auth_header
    body = httpx.QueryParams(fields).__str__().encode()
    before = len(audit_events(audit_log))
    browser.cookies.clear()
    response = await browser.request(request["method"], request["path"], content=body, headers=headers)
    browser.cookies.clear()
    new_audit = audit_events(audit_log)[before:]
    state = await dead_state(harness)
    complete = (request["method"] == "POST" and request["path"] == "/connectors/alpha/retry"
                and request["auth"] == "session" and not request["reader"] and fields.get("csrf") == csrf
                and request["origin"] in (None, "http://testserver")
                and request["content_type"] == "application/x-www-form-urlencoded")
    forged = not complete
    hypothesis_event("forged" if forged else "complete")
    if forged:
        assert response.status_code >= 400, (request, response.status_code)
        assert state is ActionState.DEAD, request
        assert {(e["action"], e["outcome"]) for e in new_audit} <= HARMLESS_AUDIT, new_audit
    else:
        # The control: the complete request works, so the refusals above are not the app refusing everything.
        assert response.status_code == 303 and state is ActionState.PENDING
        assert [(e["actor"], e["action"], e["outcome"]) for e in new_audit] == [(ADMIN, "retry", "ok")]
        await harness.store.mark_in_flight("d1", NOW)
        await harness.store.mark_dead("d1", NOW, "PermanentError: HTTP 400")
