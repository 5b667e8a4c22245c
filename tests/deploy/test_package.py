"""The package as published: sdist and wheel build without warnings, pass ``twine check``, carry the MIT licence as
an SPDX expression; ``--version`` and the ``s4s_build_info`` metric name the running version."""

from __future__ import annotations

import platform
import subprocess
import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sentinel_signl4 import __version__
from sentinel_signl4.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend of the dev environment (setuptools>=77, pinned in the dev extra), so the
    # test runs offline and sees the warnings of exactly that backend.
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
                             "--outdir", str(out), str(ROOT)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result.stdout + result.stderr


@pytest.mark.slow
def test_build_has_no_deprecation_warning(dist: tuple[Path, str]) -> None:
    _out, log = dist
    lowered = log.lower()
    assert "deprecat" not in lowered, log
    assert not [line for line in lowered.splitlines() if "warn" in line and "licen" in line], log


@pytest.mark.slow
def test_twine_check_passes_on_sdist_and_wheel(dist: tuple[Path, str]) -> None:
    out, _log = dist
    files = sorted(str(p) for p in out.iterdir())
    assert any(f.endswith(".whl") for f in files) and any(f.endswith(".tar.gz") for f in files), files
    result = subprocess.run([str(BIN / "twine"), "check", "--strict", *files],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == len(files), result.stdout


@pytest.mark.slow
def test_wheel_metadata_has_spdx_licence_and_the_licence_file(dist: tuple[Path, str]) -> None:
    out, _log = dist
    wheel = next(out.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(metadata_name).decode())
        licence = next(n for n in names if n.endswith("/licenses/LICENSE"))
        assert archive.read(licence).decode().startswith("MIT License")
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Version"] == __version__
    assert metadata["License"] is None  # the deprecated free-text field is gone


def test_version_option_prints_the_package_version() -> None:
    result = subprocess.run([str(BIN / "sentinel-signl4"), "--version"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sentinel-signl4 {__version__} (Python {platform.python_version()})"


def test_build_info_metric_names_version_and_python() -> None:
    families = {f.name: f for f in text_string_to_metric_families(Metrics().exposition().decode())}
    [sample] = families["s4s_build_info"].samples
    assert sample.name == "s4s_build_info"
    assert sample.value == 1.0
    assert sample.labels == {"version": __version__, "python": platform.python_version()}
