"""The two distributions of this repository: what each wheel ships and what it depends on.

Each wheel is built by pip from a copy of its sources (the working tree gets no build/ or egg-info), exactly as a
release would be. ``Requires-Dist`` lines are read from the wheel's own METADATA.
"""

from __future__ import annotations

import email.parser
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")

pytestmark = pytest.mark.slow


def _build(project: Path, tmp_path: Path) -> zipfile.ZipFile:
    copy = tmp_path / "src-copy"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(project / name, copy / name)
    shutil.copytree(project / "src", copy / "src", ignore=_IGNORE)
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(out), str(copy)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def _requirements(wheel: zipfile.ZipFile) -> dict[str, set[str | None]]:
    """Requirement name → the extras it is declared under (``None``: a plain runtime dependency)."""
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    message = email.parser.Parser().parsestr(wheel.read(metadata).decode())
    found: dict[str, set[str | None]] = {}
    for line in message.get_all("Requires-Dist") or []:
        name = re.match(r"[A-Za-z0-9._-]+", line)
        assert name is not None, line
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", line)
        found.setdefault(name.group(0).lower(), set()).add(extra.group(1) if extra else None)
    return found


@pytest.fixture(scope="module")
def product_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The product's wheel, built once for the checks that only read it."""
    return _build(ROOT, tmp_path_factory.mktemp("product-wheel"))


def test_product_wheel_ships_no_emulator_and_no_test_code(product_wheel: zipfile.ZipFile) -> None:
    names = product_wheel.namelist()
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"sentinel_signl4"}
    assert not [n for n in names if "emulators" in n or "/tests/" in n or n.startswith("tests/")]
    # It still ships what the connector needs at run time.
    assert "sentinel_signl4/store/migrations/script.py.mako" in names
    assert [n for n in names if n.startswith("sentinel_signl4/store/migrations/versions/")]
    assert "sentinel_signl4/example-config.toml" in names


def test_product_wheel_declares_no_test_only_dependency(product_wheel: zipfile.ZipFile) -> None:
    requires = _requirements(product_wheel)
    runtime = {name for name, extras in requires.items() if None in extras}
    assert {"httpx", "sqlalchemy", "alembic", "pydantic", "typer"} <= runtime
    assert not runtime & {"trustme", "asyncpg", "sentinel-signl4-emulators", "pytest", "hypothesis", "psutil"}
    assert requires["asyncpg"] == {"postgres"}
    assert requires["sentinel-signl4-emulators"] == {"demo"}
    assert "trustme" not in requires


def test_emulators_wheel_ships_only_the_emulators(tmp_path: Path) -> None:
    wheel = _build(ROOT / "emulators", tmp_path)
    packages = {n.split("/")[0] for n in wheel.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"sentinel_signl4_emulators"}
    assert "sentinel_signl4_emulators/py.typed" in wheel.namelist()
    requires = _requirements(wheel)
    assert "sentinel-signl4" not in requires
    assert {"starlette", "trustme", "cryptography"} <= set(requires)
