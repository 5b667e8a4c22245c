"""The status page (``/``, ``/status``) and ``/status.json``: content, escaping, and that no secret appears."""

from __future__ import annotations

import html
from urllib.parse import quote, quote_plus

import httpx
import pytest

from sentinel_signl4.domain.enums import ActionKind
from sentinel_signl4.web import dashboard as dashboard_module
from store_fixtures import make_action, make_link
from web_world import ALPHA_TOKEN, API_KEY, CLIENT_SECRET, NOW, SECRETS, TEAM_SECRET, Harness

SCRIPT = "<script>document.title='pwned'</script>"


def leaked(text: str) -> list[str]:
    """Every secret found in ``text``, raw, HTML-escaped, JSON-escaped or URL-encoded."""
    found = []
    for secret in SECRETS:
        forms = {secret, html.escape(secret), html.escape(secret, quote=False), quote(secret, safe=""),
                 quote_plus(secret), secret.replace("&", "\\u0026").replace("<", "\\u003c")}
        found.extend(secret for form in forms if form in text)
    return found


async def populate(harness: Harness) -> None:
    """alpha: in error (with secrets and markup in the message), 2 pending + 1 dead action, 3 open links;
    bravo: OK; the rest untouched."""
    store = harness.store
    alpha = harness.health["alpha"]
    alpha.failed(NOW, f"AuthError: AADSTS7000215 invalid client secret {CLIENT_SECRET} {SCRIPT}")
    harness.health["bravo"].ok(NOW)
    for key in ("p1", "p2", "d1"):
        await store.enqueue(make_action(key, "alpha", kind=ActionKind.RAISE_SIGNL), NOW)
    await store.mark_in_flight("d1", NOW)
    await store.mark_dead("d1", NOW, f"PermanentError: 401 from https://connect.signl4.com/webhook/{TEAM_SECRET} "
                                     f"with key {API_KEY} and token {ALPHA_TOKEN} <b>bold</b>")
    for number in range(3):
        link = make_link(f"inc-{number}", "alpha", incident_number=number)
        await store.put_link(link, NOW)


async def test_page_lists_every_connector_with_state_error_outbox_dead_actions_and_links(
        console: httpx.AsyncClient, harness: Harness) -> None:
    await populate(harness)
    response = await console.get("/status")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for name in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot"):
        assert f'id="connector-{name}"' in page
    assert '<span class="state error">ERROR</span>' in page
    assert '<span class="state ok">OK</span>' in page
    assert '<span class="state disabled">DISABLED</span>' in page
    assert '<span class="state starting">STARTING</span>' in page
    assert "AuthError: AADSTS7000215 invalid client secret ***" in page
    assert "PermanentError: 401 from *** with key *** and token *** " in page
    # Outbox by state for alpha: pending 2, in_flight 0, done 0, dead 1; open links 3.
    alpha = page.split('id="connector-alpha"')[1].split("</section>")[0]
    assert "<td>2</td><td>0</td><td>0</td><td>1</td>" in alpha.replace("\n", "").replace(" ", "")
    assert "<td>3</td>" in alpha
    assert "raise_signl" in alpha and "inc-d1" in alpha
    assert (await console.get("/status")).text.count("<section") == 6


async def test_page_escapes_every_value_and_forbids_scripts(console: httpx.AsyncClient, harness: Harness) -> None:
    await populate(harness)
    response = await console.get("/status")
    page = response.text
    assert "<script" not in page
    assert "<b>bold</b>" not in page
    assert "&lt;script&gt;document.title=" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "Alpha &lt;Corp&gt; &amp; Co" in page  # display_name
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["x-frame-options"] == "DENY"


async def test_no_secret_on_the_page_or_in_status_json(console: httpx.AsyncClient, harness: Harness) -> None:
    await populate(harness)
    page = (await console.get("/status")).text
    document = (await console.get("/status.json")).text
    assert leaked(page) == []
    assert leaked(document) == []


async def test_status_json_carries_the_same_data(console: httpx.AsyncClient, harness: Harness) -> None:
    await populate(harness)
    response = await console.get("/status.json")
    assert response.status_code == 200
    body = response.json()
    assert body["generated_at"] == NOW.isoformat()
    connectors = {c["name"]: c for c in body["connectors"]}
    assert list(connectors) == ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    alpha = connectors["alpha"]
    assert alpha["state"] == "error"
    assert alpha["error"].startswith("AuthError: AADSTS7000215 invalid client secret ***")
    assert alpha["last_cycle_at"] == NOW.isoformat()
    assert alpha["cycles"] == 1
    assert alpha["outbox"] == {"pending": 2, "in_flight": 0, "done": 0, "dead": 1, "discarded": 0}
    assert alpha["open_links"] == 3 and alpha["open_links_capped"] is False
    [dead] = alpha["dead_actions"]
    assert dead["kind"] == "raise_signl" and dead["incident_id"] == "inc-d1" and dead["attempts"] == 1
    assert dead["reason"].startswith("PermanentError: 401 from *** with key *** and token *** ")
    assert connectors["bravo"]["state"] == "ok" and connectors["bravo"]["error"] is None
    assert connectors["bravo"]["sync_mode"] == "both"
    assert connectors["echo"]["state"] == "disabled"
    assert connectors["charlie"]["state"] == "starting" and connectors["charlie"]["last_cycle_at"] is None


async def test_open_links_beyond_the_counting_limit_are_shown_as_a_lower_bound(
        console: httpx.AsyncClient, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    await populate(harness)
    monkeypatch.setattr(dashboard_module, "OPEN_LINKS_COUNTED", 2)
    alpha = (await console.get("/status.json")).json()["connectors"][0]
    assert (alpha["open_links"], alpha["open_links_capped"]) == (2, True)
    assert "<td>2+</td>" in (await console.get("/status")).text


async def test_page_still_shows_health_when_the_store_fails(console: httpx.AsyncClient, harness: Harness,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    await populate(harness)

    async def broken(_connector: str) -> dict[str, int]:
        raise ConnectionError(f"database gone (password {CLIENT_SECRET})")

    monkeypatch.setattr(harness.store, "count_actions", broken)
    response = await console.get("/status")
    assert response.status_code == 200
    assert "State store unreadable:</strong> ConnectionError: database gone (password ***)" in response.text
    assert '<span class="state error">ERROR</span>' in response.text
    body = (await console.get("/status.json")).json()
    assert body["connectors"][0]["outbox"] is None
    assert body["connectors"][0]["store_error"] == "ConnectionError: database gone (password ***)"
    assert leaked(response.text) == []
