"""A reload of a real ``run`` process changes single connectors: an edited connector is rebuilt while the others keep
their task and lease, its queued page goes out once; a removed one stops and releases its lease; an invalid edit is
refused and everything keeps running. Reloads come from SIGHUP and from the file changing on disk."""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integration_harness import Harness
from process_support import RunProcess
from sentinel_signl4.domain import external_id_for
from sentinel_signl4.store import StateStore
from sentinel_signl4.store.factory import open_store
from sentinel_signl4_emulators.common.faults import FaultRule

pytestmark = pytest.mark.slow

EVENTS_API = r"^/api/v2/events/"
# The installed console script, not ``python -m``: what a service unit starts.
SCRIPT = (str(Path(sys.executable).parent / "sentinel-signl4"),)


class TwoConnectors(RunProcess):
    """``sentinel-signl4 run`` on a config file with two connectors: alpha pages High incidents through the
    webhook, beta Medium ones through the REST events API (so a fault can hold beta's pages alone)."""

    def __init__(self, harness: Harness, tmp: Path) -> None:
        super().__init__(tmp, SCRIPT)
        self.harness = harness

    def text(self, *, beta: dict[str, Any] | None = None, with_beta: bool = True) -> str:
        shared = {"allow_shared_team": True}

        def one(name: str, severity: str, extra: dict[str, Any]) -> str:
            return self.harness.config_text(
                name=name, server={"host": "127.0.0.1", "port": self.port},
                overrides={"logging": {"format": "json"}, "filter": {"severities": [severity], "max_age": "15m"},
                           "signl4": {**shared, **extra.get("signl4", {})},
                           "connector": {"poll_interval": "1s", **extra.get("connector", {})}})

        alpha = one("alpha", "High", {})
        if not with_beta:
            return alpha
        beta_text = one("beta", "Medium", {"signl4": {"send_via": "events_api"}, **(beta or {})})
        return alpha + "\n" + beta_text[beta_text.index("[[connectors]]"):]

    def write(self, text: str) -> None:
        # A new file renamed into place, as editors and config management tools save.
        scratch = self.path.with_suffix(".new")
        scratch.write_text(text, encoding="utf-8")
        scratch.replace(self.path)


@pytest.fixture
async def running(harness: Harness, tmp_path: Path) -> AsyncIterator[TwoConnectors]:
    run = TwoConnectors(harness, tmp_path)
    yield run
    harness.state.faults.clear()
    run.finish()


@pytest.fixture
async def store(harness: Harness) -> AsyncIterator[StateStore]:
    opened = open_store(f"sqlite:///{harness.tmp / 'state.db'}")
    yield opened
    await opened.close()


def incident(harness: Harness, title: str, severity: str) -> str:
    created = datetime.now(UTC) - timedelta(minutes=1)
    made = harness.state.sentinel.create_incident(harness.world.workspace, title=title, severity=severity,
                                                  created=created)
    return external_id_for("alpha" if severity == "High" else "beta", str(made["id"]))


def alerts_for(harness: Harness, external_id: str) -> int:
    return len(harness.alerts(external_id))


async def held_lease(store: StateStore, name: str) -> tuple[str, int, bool]:
    lease = await store.get_lease(f"connector:{name}")
    assert lease is not None, f"no lease row for {name}"
    return lease.owner, lease.epoch, lease.expires_at > datetime.now(UTC)


async def test_sighup_rebuilds_only_the_edited_connector_and_its_queued_page_goes_out_once(
        harness: Harness, running: TwoConnectors, store: StateStore) -> None:
    running.write(running.text())
    running.start()
    await running.until(lambda: running.seen("started"), "the process to start")
    first_alpha = incident(harness, "Alpha before the reload", "High")
    await running.until(lambda: alerts_for(harness, first_alpha) == 1, "alpha's first page")
    alpha_before = await held_lease(store, "alpha")
    assert alpha_before[2]

    # beta's SIGNL4 answers 503: its page stays queued in the outbox (retried with backoff).
    outage = harness.state.faults.add(FaultRule(path=EVENTS_API, method="POST", kind="status", status=503))
    queued = incident(harness, "Beta queued across the reload", "Medium")
    await running.until(lambda: outage.fired >= 1, "beta to try its page")
    beta_before = await held_lease(store, "beta")

    running.write(running.text(beta={"connector": {"poll_interval": "2s", "display_name": "Beta edited"}}))
    running.signal(signal.SIGHUP)
    await running.until(lambda: running.seen("config_reloaded", changed=["beta"]), "the reload of beta")
    reloaded = next(e for e in running.events() if e.get("event") == "config_reloaded")
    assert reloaded["unchanged"] == ["alpha"] and reloaded["added"] == [] and reloaded["removed"] == []
    assert alerts_for(harness, queued) == 0  # still queued: SIGNL4 refused every try so far
    harness.state.faults.clear()

    await running.until(lambda: alerts_for(harness, queued) == 1, "beta's queued page after the reload")
    later_alpha = incident(harness, "Alpha after the reload", "High")
    await running.until(lambda: alerts_for(harness, later_alpha) == 1, "alpha's page after the reload")
    beta_after = await held_lease(store, "beta")
    # beta gave its lease up and took it again (a new epoch); alpha kept its lease in the same epoch throughout.
    assert beta_after[1] > beta_before[1]
    assert await held_lease(store, "alpha") == (alpha_before[0], alpha_before[1], True)
    assert not running.seen("connector_stopped", connector="alpha")
    # More cycles of the rebuilt beta: its queued page is not sent again.
    later_beta = incident(harness, "Beta after the reload", "Medium")
    await running.until(lambda: alerts_for(harness, later_beta) == 1, "the rebuilt beta's next page")
    assert running.seen("connector_started", connector="beta")
    assert alerts_for(harness, queued) == 1
    assert alerts_for(harness, first_alpha) == 1
    assert running.stop() == 0, running.log.read_text()


async def test_file_edits_refuse_an_invalid_config_and_stop_a_removed_connector(
        harness: Harness, running: TwoConnectors, store: StateStore) -> None:
    running.write(running.text())
    running.start()
    await running.until(lambda: running.seen("started"), "the process to start")
    beta_page = incident(harness, "Beta before the edits", "Medium")
    await running.until(lambda: alerts_for(harness, beta_page) == 1, "beta's first page")
    alpha_before = await held_lease(store, "alpha")

    # An invalid edit, no signal: the file watch finds it, it is refused, both connectors keep running.
    running.write(running.text().replace("[[connectors]]", "[[connectors]]\nbogus = 1", 1))
    await running.until(lambda: running.seen("config_reload_refused", reason="file_changed"), "the refusal")
    refused = next(e for e in running.events() if e.get("event") == "config_reload_refused")
    assert "bogus" in str(refused["problems"])
    after_refusal = incident(harness, "Beta after the refusal", "Medium")
    await running.until(lambda: alerts_for(harness, after_refusal) == 1, "beta still paging after the refusal")

    # beta removed from the file: it stops and releases its lease; alpha goes on in the same lease epoch.
    running.write(running.text(with_beta=False))
    await running.until(lambda: running.seen("connector_stopped", connector="beta"), "beta to stop")
    owner, _, live = await held_lease(store, "beta")
    assert not live, "beta's lease is still held after it was removed"
    reloaded = next(e for e in running.events() if e.get("event") == "config_reloaded")
    assert reloaded["removed"] == ["beta"] and reloaded["unchanged"] == ["alpha"]
    alpha_page = incident(harness, "Alpha after beta left", "High")
    await running.until(lambda: alerts_for(harness, alpha_page) == 1, "alpha paging after beta left")
    orphan = incident(harness, "Medium after beta left", "Medium")
    # alpha's next cycles run, and nothing pages for beta any more.
    alpha_again = incident(harness, "Alpha once more", "High")
    await running.until(lambda: alerts_for(harness, alpha_again) == 1, "alpha's next cycle")
    assert alerts_for(harness, orphan) == 0
    assert await held_lease(store, "alpha") == (alpha_before[0], alpha_before[1], True)
    assert owner == alpha_before[0]  # the same process held both
    assert running.stop() == 0, running.log.read_text()
