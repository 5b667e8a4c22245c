"""The console's sign-in, roles, CSRF checks and audit events, through the real app and a real SQLite store."""

from __future__ import annotations

import io
from datetime import timedelta

import httpx
import pytest
from typer.testing import CliRunner

from sentinel_signl4.cli import app
from sentinel_signl4.config import ConfigError, ConsoleConfig, parse_config
from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.web.console_auth import ConsoleAuth, LoginThrottled, hash_password, verify_password
from store_fixtures import make_action
from web_world import (
    ADMIN,
    ADMIN_HASH,
    ADMIN_PASSWORD,
    NOW,
    READER,
    READER_PASSWORD,
    Harness,
    audit_events,
    config_text,
    sign_in,
)


async def dead_row(harness: Harness, key: str = "d1") -> None:
    await harness.store.enqueue(make_action(key, "alpha", payload={"incident_number": 7}), NOW)
    await harness.store.mark_in_flight(key, NOW)
    await harness.store.mark_dead(key, NOW, "PermanentError: HTTP 400")


async def state_of(harness: Harness, key: str) -> ActionState:
    row = await harness.store.get_action(key)
    assert row is not None
    return row.state


def test_password_hashes_verify_only_their_password() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("correct horse battery", stored.replace("scrypt$", "bcrypt$"))
    assert not verify_password("x", "scrypt$not$a$valid$hash$at-all")
    assert hash_password("same", salt=b"s" * 16) != hash_password("same", salt=b"t" * 16)


async def test_unauthenticated_reads_are_sent_to_sign_in_or_refused(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert (await browser.get("/connectors/alpha")).headers["location"] == "/login"
    document = await browser.get("/status.json")
    assert document.status_code == 401 and document.headers["www-authenticate"].startswith("Basic ")
    wrong = await browser.get("/status.json", auth=(ADMIN, "not-the-password"))
    assert wrong.status_code == 401
    assert (await browser.get("/status.json", auth=(READER, READER_PASSWORD))).status_code == 200


async def test_sign_in_sets_a_strict_http_only_session_and_is_audited(browser: httpx.AsyncClient,
                                                                       audit_log: io.StringIO) -> None:
    form = await browser.get("/login")
    assert form.status_code == 200
    assert "form-action 'self'" in form.headers["content-security-policy"]
    assert "script-src" not in form.headers["content-security-policy"]  # default-src 'none': no script at all
    csrf = await sign_in(browser, ADMIN, ADMIN_PASSWORD)
    assert len(csrf) >= 32
    overview = await browser.get("/")
    assert f"Signed in as {ADMIN} (admin)" in overview.text
    [login] = audit_events(audit_log)
    assert (login["event"], login["actor"], login["action"], login["outcome"]) == (
        "operator_action", ADMIN, "login", "ok")
    assert login["via"] == "console" and login["timestamp"]


async def test_session_cookie_flags(console_app: object) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=console_app),  # type: ignore[arg-type]
                                 base_url="http://testserver") as client:
        form = await client.get("/login")
        token = form.text.split('name="login_csrf" value="')[1].split('"')[0]
        response = await client.post("/login", data={"login_csrf": token, "username": READER,
                                                     "password": READER_PASSWORD})
    cookie = next(v for k, v in response.headers.multi_items()
                  if k == "set-cookie" and v.startswith("s4s_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


async def test_wrong_password_or_unknown_user_gets_no_session(browser: httpx.AsyncClient,
                                                              audit_log: io.StringIO) -> None:
    for name, password in ((ADMIN, "wrong-password"), ("mallory", ADMIN_PASSWORD), (ADMIN, "")):
        form = await browser.get("/login")
        token = form.text.split('name="login_csrf" value="')[1].split('"')[0]
        response = await browser.post("/login", data={"login_csrf": token, "username": name, "password": password})
        assert response.status_code == 401
        assert "Wrong user name or password." in response.text
        assert "s4s_console" not in browser.cookies
    assert [e["outcome"] for e in audit_events(audit_log)] == ["refused"] * 3
    assert ADMIN_PASSWORD not in audit_log.getvalue()


async def test_login_form_without_its_double_submit_cookie_is_refused(browser: httpx.AsyncClient) -> None:
    form = await browser.get("/login")
    token = form.text.split('name="login_csrf" value="')[1].split('"')[0]
    browser.cookies.clear()  # a cross-site form post carries no SameSite=Strict cookie
    response = await browser.post("/login", data={"login_csrf": token, "username": ADMIN,
                                                  "password": ADMIN_PASSWORD})
    assert response.status_code == 403 and "s4s_console" not in browser.cookies


async def test_admin_retries_a_dead_letter_and_the_audit_says_who_what_when(
        browser: httpx.AsyncClient, harness: Harness, audit_log: io.StringIO) -> None:
    await dead_row(harness)
    csrf = await sign_in(browser, ADMIN, ADMIN_PASSWORD)
    page = (await browser.get("/connectors/alpha")).text
    assert 'action="/connectors/alpha/retry"' in page
    response = await browser.post("/connectors/alpha/retry", data={"csrf": csrf, "key": "d1"})
    assert response.status_code == 303
    assert await state_of(harness, "d1") is ActionState.PENDING
    done = await browser.get(response.headers["location"])
    assert "1 dead row(s) queued again" in done.text
    retry = audit_events(audit_log)[-1]
    assert (retry["actor"], retry["action"], retry["keys"], retry["outcome"], retry["connector"]) == (
        ADMIN, "retry", ["d1"], "ok", "alpha")
    # Again: the row is no longer dead, so the store refuses, and the audit event says why.
    await browser.post("/connectors/alpha/retry", data={"csrf": csrf, "key": "d1"})
    again = audit_events(audit_log)[-1]
    assert again["outcome"] == "refused" and "pending, not dead" in again["refused"]["d1"]


async def test_discard_needs_a_reason_and_records_who(browser: httpx.AsyncClient, harness: Harness,
                                                      audit_log: io.StringIO) -> None:
    await dead_row(harness)
    csrf = await sign_in(browser, ADMIN, ADMIN_PASSWORD)
    refused = await browser.post("/connectors/alpha/discard", data={"csrf": csrf, "key": "d1", "reason": " "})
    assert refused.status_code == 400 and await state_of(harness, "d1") is ActionState.DEAD
    await browser.post("/connectors/alpha/discard", data={"csrf": csrf, "key": "d1", "reason": "paged by phone"})
    row = await harness.store.get_action("d1")
    assert row is not None and row.state is ActionState.DISCARDED
    assert row.result == {"discarded_reason": "paged by phone", "discarded_by": ADMIN}
    assert audit_events(audit_log)[-1]["reason"] == "paged by phone"


async def test_a_reader_sees_no_controls_and_cannot_act(browser: httpx.AsyncClient, harness: Harness,
                                                        audit_log: io.StringIO) -> None:
    await dead_row(harness)
    csrf = await sign_in(browser, READER, READER_PASSWORD)
    page = (await browser.get("/connectors/alpha")).text
    assert "admin only" in page and 'action="/connectors/alpha/retry"' not in page
    response = await browser.post("/connectors/alpha/retry", data={"csrf": csrf, "key": "d1"})
    assert response.status_code == 403
    assert await state_of(harness, "d1") is ActionState.DEAD
    assert [e["action"] for e in audit_events(audit_log)] == ["login"]


async def test_sign_out_ends_the_session(browser: httpx.AsyncClient, harness: Harness) -> None:
    await dead_row(harness)
    csrf = await sign_in(browser, ADMIN, ADMIN_PASSWORD)
    stolen = browser.cookies["s4s_console"]
    assert (await browser.post("/logout", data={"csrf": csrf})).status_code == 303
    browser.cookies.set("s4s_console", stolen)  # a copy of the cookie is worth nothing after sign-out
    assert (await browser.get("/")).status_code == 303
    assert (await browser.post("/connectors/alpha/retry", data={"csrf": csrf, "key": "d1"})).status_code == 401
    assert await state_of(harness, "d1") is ActionState.DEAD


async def test_sessions_expire(harness: Harness) -> None:
    now = [NOW]
    auth = ConsoleAuth(harness.config.console, lambda: now[0])
    principal = await auth.login(ADMIN, ADMIN_PASSWORD)
    assert principal is not None and principal.session is not None
    assert auth.session(principal.session) == principal
    now[0] = NOW + harness.config.console.session_ttl
    assert auth.session(principal.session) is None


async def test_clearing_a_window_redirects_only_within_the_console(browser: httpx.AsyncClient,
                                                                    harness: Harness) -> None:
    csrf = await sign_in(browser, ADMIN, ADMIN_PASSWORD)
    for back, expected in (("/connectors/alpha", "/connectors/alpha"), ("//evil.example/x", "/"),
                           ("/\\evil.example", "/"), ("https://evil.example/", "/"), ("/a/../../b", "/")):
        response = await browser.post("/pauses", data={"csrf": csrf, "connector": "alpha", "duration": "1h",
                                                       "mode": "skip"})
        assert response.status_code == 303
        [pause] = await harness.store.pauses(NOW)
        cleared = await browser.post("/pauses/clear", data={"csrf": csrf, "pause": pause.id, "back": back})
        assert cleared.headers["location"] == expected, back
        assert await harness.store.pauses(NOW) == []


def test_the_console_listens_on_loopback_unless_configured() -> None:
    assert (ConsoleConfig().host, ConsoleConfig().port, ConsoleConfig().users) == ("127.0.0.1", 8081, ())


def test_hash_password_command_prints_a_hash_that_verifies() -> None:
    result = CliRunner().invoke(app, ["console", "hash-password", "--stdin"], input="a long enough password\n")
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip()
    assert verify_password("a long enough password", printed) and "a long enough password" not in printed
    short = CliRunner().invoke(app, ["console", "hash-password", "--stdin"], input="short\n")
    assert short.exit_code == 2 and "12 characters" in short.stderr


def test_a_plain_password_in_the_config_is_refused(harness: Harness) -> None:
    text = config_text(harness.config.store.url).replace(ADMIN_HASH, "hunter2-plain-password")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    assert "hash-password" in str(caught.value) and "hunter2" not in str(caught.value)


async def wrong_sign_in(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    form = await client.get("/login")
    login_csrf = form.cookies.get("s4s_login") or client.cookies.get("s4s_login")
    return await client.post("/login", data={"login_csrf": login_csrf, "username": name, "password": password})


async def test_wrong_passwords_lock_the_name_even_for_the_right_password_and_are_audited(
        console_app: object, audit_log: io.StringIO) -> None:
    attacker = httpx.AsyncClient(transport=httpx.ASGITransport(app=console_app, client=("203.0.113.9", 4000)),
                                 base_url="http://testserver")
    async with attacker:
        answers = [(await wrong_sign_in(attacker, ADMIN, f"guess-{i}")).status_code for i in range(5)]
        assert answers == [401] * 5
        locked = await wrong_sign_in(attacker, ADMIN, ADMIN_PASSWORD)
        # Refused before the password is checked: the answer must not confirm a right guess.
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["retry-after"]) <= 60
        assert "s4s_console" not in attacker.cookies
        assert "Too many failed sign-ins" in locked.text
        # Basic auth is locked by the same count (the user name), so a script cannot guess around the form.
        basic = await attacker.get("/status.json", auth=(ADMIN, ADMIN_PASSWORD))
        assert basic.status_code == 429 and "retry-after" in basic.headers
    # Another user from another address is not affected by someone guessing the admin's password.
    reader = httpx.AsyncClient(transport=httpx.ASGITransport(app=console_app, client=("198.51.100.7", 4000)),
                               base_url="http://testserver")
    async with reader:
        assert await sign_in(reader, READER, READER_PASSWORD)
    outcomes = [(e["actor"], e["outcome"]) for e in audit_events(audit_log) if e["action"] == "login"]
    assert outcomes == [(ADMIN, "refused")] * 5 + [(ADMIN, "throttled"), (READER, "ok")]


async def test_guessing_many_names_from_one_address_locks_the_address(console_app: object) -> None:
    attacker = httpx.AsyncClient(transport=httpx.ASGITransport(app=console_app, client=("203.0.113.9", 4000)),
                                 base_url="http://testserver")
    async with attacker:
        for i in range(5):
            assert (await wrong_sign_in(attacker, f"user{i}", "x")).status_code == 401
        assert (await wrong_sign_in(attacker, READER, READER_PASSWORD)).status_code == 429


async def test_the_lockout_ends_and_a_right_password_clears_the_count(harness: Harness) -> None:
    now = [NOW]
    auth = ConsoleAuth(harness.config.console, lambda: now[0])
    for _ in range(5):
        assert await auth.login(ADMIN, "wrong", "192.0.2.1") is None
    with pytest.raises(LoginThrottled) as locked:
        await auth.login(ADMIN, ADMIN_PASSWORD, "192.0.2.1")
    assert locked.value.retry_after == 60
    now[0] = NOW + timedelta(seconds=61)
    assert await auth.login(ADMIN, ADMIN_PASSWORD, "192.0.2.1") is not None
    assert len(auth.throttle) == 0
    # Counting starts again from zero after a success.
    for _ in range(4):
        assert await auth.login(ADMIN, "wrong", "192.0.2.1") is None
    assert await auth.login(ADMIN, ADMIN_PASSWORD, "192.0.2.1") is not None


def test_login_throttle_settings_are_bounded() -> None:
    with pytest.raises(ValueError, match="login_failures"):
        ConsoleConfig.model_validate({"login_failures": 0})
    with pytest.raises(ValueError, match="login_lockout"):
        ConsoleConfig.model_validate({"login_lockout": "2h"})
    assert ConsoleConfig.model_validate({"login_lockout": "30s"}).login_lockout == timedelta(seconds=30)
