"""The console overview and connector page: figures derived from the store, sorting and filtering by query
parameters (no JavaScript), 200 connectors, and that secrets and markup never reach the HTML."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from sentinel_signl4.config import parse_config
from sentinel_signl4.domain.enums import ActionKind
from sentinel_signl4.engine.health import ConnectorHealth
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.store.factory import open_store
from sentinel_signl4.web import build_console_app
from sentinel_signl4.web.console_views import p95
from store_fixtures import make_action
from web_world import ADMIN, ADMIN_PASSWORD, NOW, SECRETS, Harness, config_text, sign_in

SCRIPT = "<script>document.title='pwned'</script>"
ROW = re.compile(r'<tr id="row-([a-z0-9_-]+)">')


def test_p95_is_the_nearest_rank_percentile() -> None:
    assert p95([]) is None
    assert p95([4.0]) == 4.0
    assert p95([float(n) for n in range(1, 101)]) == 95.0
    assert p95([float(n) for n in range(1, 21)]) == 19.0  # ceil(0.95 * 20) = 19th value
    assert p95([10.0, 1.0, 5.0]) == 10.0


async def raised(harness: Harness, key: str, connector: str, *, queued: timedelta, took: timedelta,
                 title: str = "Suspicious sign-in", number: int = 1) -> None:
    """A RAISE_SIGNL row queued at NOW - queued and done ``took`` later."""
    store = harness.store
    payload = {"incident_number": number, "severity": "High", "incident_url": f"https://portal.example/{number}",
               "request": {"title": title, "external_id": f"ext-{key}"}}
    await store.enqueue(make_action(key, connector, kind=ActionKind.RAISE_SIGNL, payload=payload), NOW - queued)
    await store.mark_in_flight(key, NOW - queued)
    await store.complete(key, NOW - queued + took, {"event_id": f"evt-{key}"})


async def test_overview_shows_signls_of_24h_p95_dead_letters_and_oldest_pending(console: httpx.AsyncClient,
                                                                               harness: Harness) -> None:
    for n in range(20):  # 1 s … 20 s from queue to SIGNL4
        await raised(harness, f"r{n}", "alpha", queued=timedelta(hours=1), took=timedelta(seconds=n + 1))
    await raised(harness, "old", "alpha", queued=timedelta(hours=30), took=timedelta(seconds=999))
    alpha = harness.health["alpha"]
    alpha.failed(NOW - timedelta(minutes=7), f"PermanentError: {SCRIPT}")
    alpha.dead_letters = 2
    alpha.oldest_pending_at = NOW - timedelta(minutes=3)
    page = (await console.get("/")).text
    row = page.split('<tr id="row-alpha">')[1].split("</tr>")[0]
    cells = [re.sub(r"<[^>]+>", " ", c).split() for c in row.split("<td>")[1:]]
    assert cells[1][0] == "ERROR" and "&lt;script&gt;" in row and SCRIPT not in page
    assert cells[2] == ["7", "min", "ago"]
    assert cells[3] == ["never", "failing", "since", "7", "min", "ago"]
    assert cells[4] == ["20"]  # the 30-hour-old Signl is not in the last 24 h
    assert cells[5] == ["19", "s"]  # p95 of 1..20 s, the 999 s one excluded
    assert cells[6] == ["3", "min"]
    assert cells[7] == ["2"]
    assert not any(secret in page for secret in SECRETS)


async def test_sorting_and_filtering_by_query_parameters(console: httpx.AsyncClient, harness: Harness) -> None:
    harness.health["alpha"].failed(NOW, "boom")
    harness.health["bravo"].ok(NOW)
    harness.health["charlie"].ok(NOW)
    harness.health["bravo"].dead_letters = 5
    harness.health["charlie"].dead_letters = 1
    default = ROW.findall((await console.get("/")).text)
    assert default[0] == "alpha"  # errors first
    assert default[-1] == "echo"  # disabled last
    assert ROW.findall((await console.get("/?sort=name&dir=desc")).text) == sorted(default, reverse=True)
    by_dead = ROW.findall((await console.get("/?sort=dead&dir=desc")).text)
    assert by_dead[:2] == ["bravo", "charlie"]
    assert ROW.findall((await console.get("/?state=ok&sort=name")).text) == ["bravo", "charlie"]
    assert ROW.findall((await console.get("/?q=CORP")).text) == ["alpha"]  # display name "Alpha <Corp> & Co"
    nothing = (await console.get("/?q=%3Cscript%3E")).text
    assert "No connector matches." in nothing and 'value="&lt;script&gt;"' in nothing
    # The column headings are plain links that keep the filter and flip the direction.
    page = (await console.get("/?sort=name&dir=asc&state=ok")).text
    assert 'href="?sort=name&amp;dir=desc&amp;state=ok&amp;q="' in page


@pytest.fixture
async def big_console(tmp_path: Path, db_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Harness]]:
    """A console over 200 connectors (one per webhook situation of the test config, repeated)."""
    base = config_text(f"sqlite:///{db_path}")
    head, _, first = base.partition("[[connectors]]")
    block = "[[connectors]]" + first.split("[[connectors]]")[0]
    blocks = [block.replace('name = "alpha"', f'name = "c{i:03d}"').replace("law-alpha", f"law-{i}")
              .replace("allow_shared_team", "x") for i in range(200)]
    text = head + "".join(blocks)
    text = text.replace("[connectors.signl4]\n", "[connectors.signl4]\nallow_shared_team = true\n")
    config = parse_config(text, env={})
    assert len(config.connectors) == 200
    async with open_store(config.store.url) as store:
        harness = Harness(config, store, Metrics(), {c.name: ConnectorHealth(c.name) for c in config.connectors})
        for i, name in enumerate(harness.health):
            if i % 3 == 0:
                harness.health[name].ok(NOW)
        await raised(harness, "x1", "c150", queued=timedelta(minutes=5), took=timedelta(seconds=3))
        app = build_console_app(harness.context(), audit_stream=io.StringIO())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     auth=(ADMIN, ADMIN_PASSWORD)) as client:
            yield client, harness


async def test_the_overview_lists_200_connectors_in_one_table(
        big_console: tuple[httpx.AsyncClient, Harness]) -> None:
    client, _ = big_console
    response = await client.get("/?sort=name")
    assert response.status_code == 200
    names = ROW.findall(response.text)
    assert names == [f"c{i:03d}" for i in range(200)]
    assert "200 of 200 connector(s)" in response.text
    assert response.text.count("<table>") == 1
    ok = ROW.findall((await client.get("/?state=ok")).text)
    assert len(ok) == 67
    row = response.text.split('<tr id="row-c150">')[1].split("</tr>")[0]
    assert "<td>1</td>" in row and "<td>3 s</td>" in row


async def test_connector_page_shows_signls_rows_and_configuration_without_secrets(
        console: httpx.AsyncClient, harness: Harness) -> None:
    await raised(harness, "r1", "alpha", queued=timedelta(minutes=30), took=timedelta(seconds=4),
                 title=f"Mail {SCRIPT}", number=42)
    store = harness.store
    await store.enqueue(make_action("ack-comment", "alpha", kind=ActionKind.ADD_COMMENT, incident_id="inc-r1",
                                    payload={"message": "ack", "event": {
                                        "kind": "acknowledged", "user": {"name": "Grace <b>H</b>"},
                                        "raised_at": (NOW - timedelta(minutes=26)).isoformat()}}), NOW)
    await store.enqueue(make_action("p1", "alpha", payload={"incident_number": 43}), NOW)
    await store.enqueue(make_action("d1", "alpha", payload={"incident_number": 44}), NOW)
    await store.mark_in_flight("d1", NOW)
    await store.mark_dead("d1", NOW, f"PermanentError: {SCRIPT}")
    page = (await console.get("/connectors/alpha")).text
    signls = page.split('id="signls"')[1].split("</table>")[0]
    assert '<a href="https://portal.example/42" rel="noreferrer">#42</a>' in signls
    assert "Mail &lt;script&gt;" in signls and "High" in signls and "evt-r1" in signls
    assert "Grace &lt;b&gt;H&lt;/b&gt;" in signls and "<td>3 min</td>" in signls  # 3 min 56 s after the page
    assert "<td>acknowledged</td>" in signls
    dead = page.split('id="dead"')[1].split("</table>")[0]
    assert "<code>d1</code>" in dead and "PermanentError: &lt;script&gt;" in dead
    assert "<code>p1</code>" in page.split('id="waiting"')[1].split("</table>")[0]
    assert "acknowledged" in page.split('id="reverse"')[1].split("</table>")[0]
    settings = page.split('id="config"')[1]
    assert "<code>signl4.webhook_url</code></td><td>(set, hidden)" in settings
    assert "<code>azure.workspace_name</code></td><td>law-alpha" in settings
    assert not any(secret in page for secret in SECRETS)
    assert SCRIPT not in page
    assert (await console.get("/connectors/nosuch")).status_code == 404


async def test_every_form_field_has_a_label_and_every_button_a_name(console: httpx.AsyncClient,
                                                                    browser: httpx.AsyncClient,
                                                                    harness: Harness) -> None:
    """Accessibility basics, on every page with a form: a visible label for each field, an accessible name for each
    button (screen readers, and keyboard users who tab through them)."""
    await harness.store.enqueue(make_action("d1", "alpha"), NOW)
    await harness.store.mark_in_flight("d1", NOW)
    await harness.store.mark_dead("d1", NOW, "PermanentError: HTTP 400")
    await harness.store.enqueue(make_action("p1", "alpha"), NOW)
    pages = [(await browser.get("/login")).text]
    await sign_in(browser, ADMIN, ADMIN_PASSWORD)
    pages += [(await browser.get(path)).text for path in ("/", "/connectors/alpha")]
    for page in pages:
        fields = re.findall(r"<(?:input|select)\b([^>]*)>", page)
        visible = [f for f in fields if 'type="hidden"' not in f]
        assert visible
        for attributes in visible:
            [ident] = re.findall(r'\bid="([^"]+)"', attributes)
            assert page.count(f'<label for="{ident}">') == 1, ident
        for button in re.findall(r"<button\b([^>]*)>([^<]*)</button>", page):
            assert button[1].strip() or "aria-label=" in button[0]
    for page in pages:
        page_ids = re.findall(r'\bid="([^"]+)"', page)
        assert len(page_ids) == len(set(page_ids)), "duplicate ids break label association"
