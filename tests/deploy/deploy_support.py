"""Shared helpers of the deployment-file tests: paths and the secret files a config under deploy/ reads."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

_FILE_REF = re.compile(r"\$\{file:(?P<path>/run/secrets/[^}]+)\}")


def with_secret_files(config_text: str, directory: Path) -> str:
    """``config_text`` with every ``${file:/run/secrets/…}`` pointed at a file under ``directory`` that holds a
    plausible value (with a trailing newline, as ``echo`` writes it)."""
    def replace(match: re.Match[str]) -> str:
        name = match.group("path").rsplit("/", 1)[1]
        target = directory / name
        if name == "signl4_webhook_url":
            value = f"https://connect.signl4.com/webhook/{secrets.token_hex(8)}"
        else:
            value = secrets.token_urlsafe(32)
        target.write_text(value + "\n", encoding="utf-8")
        return "${file:" + str(target) + "}"

    directory.mkdir(parents=True, exist_ok=True)
    return _FILE_REF.sub(replace, config_text)
