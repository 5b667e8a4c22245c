"""The status page in a real headless browser: it renders, and markup injected through an error message or a
dead-letter reason stays text (no script runs, no element appears).

Needs Debian's ``chromium`` at /usr/bin/chromium (``apt-get install chromium``; ``.ci/run`` installs it). Without it
the test is skipped locally, and fails under ``CI=true``. Nothing is downloaded by the test.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.web import WebServer, build_web_app
from store_fixtures import make_action
from web_world import NOW, SECRETS

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


async def test_dashboard_renders_in_a_browser_and_injected_markup_stays_text(runtime: Runtime,
                                                                              tmp_path: Path) -> None:
    runtime.connectors["alpha"].runtime.health.failed(NOW, f"PermanentError: {INJECTED}")
    runtime.connectors["bravo"].runtime.health.ok(NOW)
    await runtime.store.enqueue(make_action("d1", "alpha"), NOW)
    await runtime.store.mark_in_flight("d1", NOW)
    await runtime.store.mark_dead("d1", NOW, f"rejected: {INJECTED}")
    server = WebServer(build_web_app(runtime), host="127.0.0.1", port=0)
    async with server.running():
        dom = await dump_dom(f"http://127.0.0.1:{server.port}/", tmp_path / "profile")
    assert "<title>sentinel-signl4 status</title>" in dom
    assert 'id="connector-alpha"' in dom and 'id="connector-foxtrot"' in dom
    assert ">ERROR</span>" in dom and ">OK</span>" in dom
    assert 'data-pwned="1"' not in dom
    assert "<img" not in dom and "<script" not in dom
    assert dom.count("&lt;script&gt;document.title='pwned'&lt;/script&gt;") == 2  # error and dead reason, as text
    assert not any(secret in dom for secret in SECRETS)
