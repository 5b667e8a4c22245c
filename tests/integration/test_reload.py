"""A rotated Key Vault secret and an edited config replace the running config without a restart of the process;
an invalid edit is refused and the running config stays."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from crash_support import free_port
from integration_harness import Harness
from sentinel_signl4.bootstrap import Runtime
from sentinel_signl4.config import Config, load_config
from sentinel_signl4.reload import AuthWatch, run_reloading
from sentinel_signl4.runner import run_forever


async def until(condition: Callable[[], bool], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.05)


def write_config(harness: Harness, path: Path, *, poll: str = "2s") -> None:
    base = harness.server.base_url
    path.write_text(harness.config_text(
        server={"host": "127.0.0.1", "port": 0},
        overrides={"signl4": {"api_key": "${keyvault:" + base + "/secrets/signl4-api-key}"},
                   "connector": {"poll_interval": poll}},
        extra_tables="[keyvault]\nverify_challenge_resource = false\n"), encoding="utf-8")


async def test_rotated_secret_and_edits_replace_the_running_config(harness: Harness, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    vault = harness.state.keyvault
    vault.tenant_id = harness.world.tenant_id
    vault.set_secret("signl4-api-key", "api-key-version-1")
    path = tmp_path / "config.toml"
    write_config(harness, path)
    served: list[Config] = []

    async def serve(config: Config, stop: asyncio.Event) -> None:
        served.append(config)
        await run_forever(config, stop)

    def api_key(config: Config) -> str:
        key = config.connectors[0].signl4.api_key
        assert key is not None
        return key.get_secret_value()

    stop, hup = asyncio.Event(), asyncio.Event()
    every: dict[str, float | None] = {"seconds": 0.2}
    task = asyncio.create_task(run_reloading(lambda: load_config(path), serve, stop, hup,
                                             refresh=lambda _c: every["seconds"]))
    try:
        await until(lambda: len(served) == 1)
        reads = len(vault.reads())
        await until(lambda: len(vault.reads()) > reads + 1)  # re-read on schedule, nothing changed yet
        assert len(served) == 1
        vault.set_secret("signl4-api-key", "api-key-version-2")  # rotation
        await until(lambda: len(served) == 2)
        assert [api_key(c) for c in served] == ["api-key-version-1", "api-key-version-2"]
        every["seconds"] = None  # from now on only SIGHUP re-reads
        await until(lambda: task.done() or len(served) == 2)
        path.write_text(path.read_text(encoding="utf-8").replace("[[connectors]]", "[[connectors]]\nbogus = 1"),
                        encoding="utf-8")
        hup.set()
        await until(lambda: "config_reload_refused" in capsys.readouterr().err)
        assert len(served) == 2 and not task.done()  # still running the old config
        write_config(harness, path, poll="3s")
        hup.set()
        await until(lambda: len(served) == 3)
        assert served[-1].connectors[0].poll_interval.total_seconds() == 3
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


def start_run(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as sink:
        return subprocess.Popen([str(Path(sys.executable).parent / "sentinel-signl4"), "run", "--config",
                                 str(config)], stdout=sink, stderr=subprocess.STDOUT)


@pytest.mark.slow
async def test_sighup_to_a_real_run_process_refuses_a_bad_edit_and_applies_a_good_one(harness: Harness,
                                                                                       tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    port = free_port()

    def write(poll: str, broken: bool = False) -> None:
        text = harness.config_text(server={"host": "127.0.0.1", "port": port},
                                   overrides={"logging": {"format": "json"}, "connector": {"poll_interval": poll}})
        path.write_text(text.replace("[[connectors]]", "[[connectors]]\nbogus = 1") if broken else text,
                        encoding="utf-8")

    write("2s")
    log = tmp_path / "run.log"
    process = start_run(path, log)
    try:
        def events() -> list[dict[str, object]]:
            lines = log.read_text(encoding="utf-8").splitlines()
            return [json.loads(line) for line in lines if line.startswith("{")]

        def seen(name: str, count: int = 1) -> bool:
            assert process.poll() is None, log.read_text()
            return sum(e.get("event") == name for e in events()) >= count

        await until(lambda: seen("started"))
        write("2s", broken=True)
        process.send_signal(signal.SIGHUP)
        await until(lambda: seen("config_reload_refused"))
        refused = next(e for e in events() if e.get("event") == "config_reload_refused")
        assert "bogus" in str(refused["problems"])
        write("3s")
        process.send_signal(signal.SIGHUP)
        await until(lambda: seen("config_reloaded"))
        reloaded = next(e for e in events() if e.get("event") == "config_reloaded")
        assert reloaded["changed"] == ["contoso"]  # rebuilt alone, in the running process
        assert seen("connector_started") and not seen("started", 2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
        assert all(line.startswith("{") for line in log.read_text().splitlines()), log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_a_refused_credential_rereads_key_vault_and_recovers(harness: Harness, tmp_path: Path) -> None:
    """The client secret lives in Key Vault; the value there is wrong (an old secret), then rotated to the right one:
    the refused credential triggers a re-read, without any schedule or SIGHUP."""
    world, vault, base = harness.world, harness.state.keyvault, harness.server.base_url
    vault.tenant_id = world.tenant_id
    vault.set_secret("client-secret", "an-old-revoked-secret")
    path = tmp_path / "config.toml"
    path.write_text(harness.config_text(
        server={"host": "127.0.0.1", "port": 0},
        overrides={"credential": {"client_secret": "${keyvault:" + base + "/secrets/client-secret}"}},
        extra_tables=f'[keyvault]\nverify_challenge_resource = false\ntenant_id = "{world.tenant_id}"\n'
                     f'authority_host = "{base}"\n[keyvault.credential]\nkind = "client_secret"\n'
                     f'client_id = "{world.client_id}"\nclient_secret = "{world.client_secret}"\n'),
        encoding="utf-8")
    runtimes: list[Runtime] = []

    async def serve(config: Config, stop: asyncio.Event) -> None:
        await run_forever(config, stop, on_runtime=runtimes.append)

    def errors() -> list[str | None]:
        return [p.runtime.health.error for p in runtimes[-1].connectors.values()] if runtimes else []

    stop = asyncio.Event()
    auth = AuthWatch(errors, every=0.1, gap=0.5)
    task = asyncio.create_task(run_reloading(lambda: load_config(path), serve, stop, asyncio.Event(),
                                             refresh=lambda _c: None, auth=auth))
    try:
        await until(lambda: any(e and "AADSTS7000215" in e for e in errors()))
        assert len(runtimes) == 1
        vault.set_secret("client-secret", world.client_secret)  # the rotation
        await until(lambda: len(runtimes) == 2)
        health = runtimes[-1].connectors["contoso"].runtime.health
        await until(lambda: health.last_success_at is not None)
        assert health.error is None
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
