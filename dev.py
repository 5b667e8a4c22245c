#!/usr/bin/env python3
"""Fresh-machine entry points. Needs only Python >= 3.11.

    python3 dev.py demo     # run the demo against the bundled emulators
    python3 dev.py test     # lint, type-check and run every test (pytest in two worker processes)

Each command creates ./.venv and installs both distributions of this repository into it, editable, when needed
(again whenever either pyproject.toml changes): the emulators (./emulators) and the connector with its
``dev``, ``postgres`` and ``demo`` extras.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
MARKER = VENV / ".installed-pyproject-sha256"
PYPROJECTS = (ROOT / "pyproject.toml", ROOT / "emulators" / "pyproject.toml")


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file may be started by an older python3
        sys.exit(f"Python >= 3.11 is required; this is {sys.version.split()[0]}")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in PYPROJECTS)).hexdigest()
    if PY.exists() and MARKER.exists() and MARKER.read_text().strip() == digest:
        return
    if not PY.exists():
        print("Creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing sentinel-signl4, its emulators and its test tools into .venv …", flush=True)
    run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(PY), "-m", "pip", "install", "--quiet", "-e", str(ROOT / "emulators"), "-e", f"{ROOT}[dev,postgres,demo]"])
    MARKER.write_text(digest)


def run(cmd: list[str], **kwargs: object) -> None:
    result = subprocess.run(cmd, cwd=ROOT, check=False, **kwargs)  # type: ignore[call-overload]  # noqa: S603
    if result.returncode != 0:
        sys.exit(result.returncode)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test"}:
        sys.exit(__doc__)
    ensure_venv()
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "demo":
        run([str(BIN / "sentinel-signl4"), "demo", *rest])
    else:
        run([str(BIN / "ruff"), "check", "src", "emulators/src", "tests", "bench", "dev.py"])
        run([str(BIN / "mypy")])
        # Two pytest-xdist workers, each test to whichever is free: most of the suite's wall time is spent waiting
        # on connector processes and emulated remote sides, not computing. ``-n 0`` in ``rest`` runs one process.
        run([str(PY), "-m", "pytest", "-n", "2", "--dist", "worksteal", *rest])


if __name__ == "__main__":
    main()
