"""The console in a real headless browser (driven over the DevTools pipe, ``chromium_pipe.py``): sign in, read the
overview and the status cards, retry a dead letter; markup injected through an error message or a dead-letter
reason stays text (no script runs, no element appears). Screenshots go to ``test-artifacts/console/``.

Needs Debian's ``chromium`` at /usr/bin/chromium (``apt-get install chromium``; ``.ci/run`` installs it). Without it
the test is skipped locally, and fails under ``CI=true``. Nothing is downloaded by the test.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from chromium_pipe import Page, chromium_page
from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.web import WebServer, build_console_app_for
from store_fixtures import make_action
from web_world import ADMIN, ADMIN_PASSWORD, NOW, SECRETS

CHROMIUM = Path("/usr/bin/chromium")

if not CHROMIUM.exists() and os.environ.get("CI") == "true":
    raise RuntimeError("CI=true but /usr/bin/chromium is missing: .ci/run installs it (apt-get install chromium)")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium (Debian: apt-get install chromium); .ci/run installs it, so CI runs this test",
)

INJECTED = ("<script>document.title='pwned'</script>"
            "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">")


async def dump_dom(url: str, profile: Path) -> str:
    """The DOM after load, as chromium serialises it (scripts, if any were allowed, have run by then)."""
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        f"--user-data-dir={profile}", "--virtual-time-budget=2000", "--dump-dom", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=25)
    assert process.returncode == 0
    return out.decode()


async def test_browser_runs_scripts_in_this_setup(tmp_path: Path) -> None:
    """Control: the same invocation runs inline scripts and onerror handlers, so the test below could see one."""
    page = tmp_path / "control.html"
    page.write_text(f"<html><head><title>t</title></head><body>{INJECTED}</body></html>")
    dom = await dump_dom(page.as_uri(), tmp_path / "profile")
    assert "<title>pwned</title>" in dom
    assert 'data-pwned="1"' in dom


async def test_console_in_a_browser_sign_in_overview_retry_and_injected_markup(runtime: Runtime,
                                                                                 tmp_path: Path) -> None:
    """Sign in through the form, read the overview and the status cards, retry a dead letter with its button;
    markup injected through an error message, a dead-letter reason and an incident title stays text."""
    runtime.connectors["alpha"].runtime.health.failed(NOW, f"PermanentError: {INJECTED}")
    runtime.connectors["bravo"].runtime.health.ok(NOW)
    await runtime.store.enqueue(make_action("d1", "alpha", payload={"incident_number": 17}), NOW)
    await runtime.store.mark_in_flight("d1", NOW)
    await runtime.store.mark_dead("d1", NOW, f"rejected: {INJECTED}")
    shots = artifacts_dir()
    server = WebServer(build_console_app_for(runtime), host="127.0.0.1", port=0)
    async with server.running(), chromium_page(tmp_path / "profile") as page:
        base = f"http://127.0.0.1:{server.port}"
        await page.goto(f"{base}/")
        assert await page.evaluate("location.pathname") == "/login"  # not signed in: sent to the form
        await page.screenshot(shots / "login.png")
        await page.submit(f"""document.getElementById('username').value = {ADMIN!r};
            document.getElementById('password').value = {ADMIN_PASSWORD!r};
            document.querySelector('form[action="/login"]').submit()""")
        assert await page.evaluate("location.pathname") == "/", await page.evaluate("document.body.innerText")
        assert await page.evaluate("document.title") == "Overview: sentinel-signl4 console"
        rows = await page.evaluate("[...document.querySelectorAll('tr[id^=row-]')].map(r => r.id)")
        assert rows[0] == "row-alpha" and len(rows) == 6
        assert await page.evaluate("document.querySelector('#row-alpha .state').textContent") == "ERROR"
        await page.screenshot(shots / "overview.png")
        await assert_no_injection(page)
        await page.goto(f"{base}/status")
        assert await page.evaluate("document.querySelectorAll('section').length") == 6
        await assert_no_injection(page)
        await page.goto(f"{base}/connectors/alpha")
        assert "rejected: <script>" in await page.evaluate("document.querySelector('#dead + table').innerText")
        await assert_no_injection(page)
        await page.screenshot(shots / "connector-dead-letter.png")
        await page.submit("document.querySelector('button[aria-label^=Retry]').click()")
        assert "1 dead row(s) queued again" in await page.evaluate("document.querySelector('.flash').textContent")
        await page.screenshot(shots / "connector-after-retry.png")
    row = await runtime.store.get_action("d1")
    assert row is not None and row.state is ActionState.PENDING


async def test_console_in_a_browser_set_and_clear_a_maintenance_window(runtime: Runtime, tmp_path: Path) -> None:
    """An admin pauses High incidents of alpha for 2 h from the connector page; the window is shown on every page
    until it is cleared with its button; a reader sees it but has no button."""
    shots = artifacts_dir()
    server = WebServer(build_console_app_for(runtime), host="127.0.0.1", port=0)
    async with server.running(), chromium_page(tmp_path / "profile") as page:
        base = f"http://127.0.0.1:{server.port}"
        await sign_in(page, base, ADMIN, ADMIN_PASSWORD)
        await page.goto(f"{base}/connectors/alpha")
        assert await page.evaluate("document.querySelector('section.notice')") is None
        await page.submit("""document.getElementById('pause-duration').value = '2h';
            document.getElementById('pause-severities').value = 'High';
            document.getElementById('pause-mode').value = 'hold';
            document.getElementById('pause-reason').value = 'Firewall <upgrade>';
            document.querySelector('form[action="/pauses"]').submit()""")
        notice = await page.evaluate("document.querySelector('section.notice').innerText")
        assert "hold High of alpha until" in notice and "(Firewall <upgrade>)" in notice and f"set by {ADMIN}" in notice
        await page.screenshot(shots / "maintenance-window.png")
        await page.goto(f"{base}/")
        assert "hold High of alpha" in await page.evaluate("document.querySelector('section.notice').innerText")
        [pause] = await runtime.store.pauses(NOW)
        assert (pause.connector, pause.severities, pause.mode, pause.created_by) == ("alpha", ("High",), "hold", ADMIN)
        await page.submit("document.querySelector('button[aria-label^=\"Clear pause\"]').click()")
        assert await page.evaluate("document.querySelector('section.notice')") is None
    assert await runtime.store.pauses(NOW) == []


async def sign_in(page: Page, base: str, name: str, password: str) -> None:
    await page.goto(f"{base}/login")
    await page.submit(f"""document.getElementById('username').value = {name!r};
        document.getElementById('password').value = {password!r};
        document.querySelector('form[action="/login"]').submit()""")
    assert await page.evaluate("location.pathname") == "/", await page.evaluate("document.body.innerText")


async def assert_no_injection(page: Page) -> None:
    assert await page.evaluate("document.body.getAttribute('data-pwned')") is None
    assert "pwned" not in await page.evaluate("document.title")
    assert await page.evaluate("document.querySelectorAll('main img, main script').length") == 0
    markup = await page.evaluate("document.documentElement.outerHTML")
    assert not any(secret in markup for secret in SECRETS)


def artifacts_dir() -> Path:
    """Where screenshots go: $S4S_TEST_ARTIFACTS, else test-artifacts/console in the repository (gitignored)."""
    root = os.environ.get("S4S_TEST_ARTIFACTS") or str(Path(__file__).resolve().parents[2] / "test-artifacts")
    return Path(root) / "console"
