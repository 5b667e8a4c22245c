"""What a bare install (no extras) does when asked for something an extra brings: a clear instruction, nothing else.

The missing distribution is hidden by a ``None`` entry in ``sys.modules``, which makes its import fail exactly as an
absent package does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentinel_signl4.cli import app
from sentinel_signl4.store.factory import open_store


@pytest.mark.parametrize("command", ["demo", "emulate"])
def test_demo_and_emulate_without_the_emulators_say_which_extra_to_install(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentinel_signl4_emulators", None)
    result = CliRunner().invoke(app, [command, "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2, result.output
    assert f"`sentinel-signl4 {command}` needs the emulators" in result.output
    assert "install sentinel-signl4[demo]" in result.output
    assert not (tmp_path / "w").exists()  # nothing was started or written


def test_a_postgresql_store_without_the_driver_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    with pytest.raises(ValueError, match=r"install sentinel-signl4\[postgres\]") as raised:
        open_store("postgresql://reader:hunter2@db.example:5432/signl4")
    assert "hunter2" not in str(raised.value)


def test_a_sqlite_install_runs_its_store_error_checks_without_the_driver() -> None:
    code = (
        "import sqlite3, sys\n"
        "sys.modules['asyncpg'] = None\n"
        "from sentinel_signl4.store.errors import is_store_error\n"
        "assert is_store_error(sqlite3.OperationalError('locked'))\n"
        "assert not is_store_error(ValueError('a bug'))\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
