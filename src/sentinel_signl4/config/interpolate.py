"""``${ENV_NAME}`` (and ``${ENV_NAME:-default}``) in any string of the config."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["InterpolationError", "interpolate"]

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")


class InterpolationError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def interpolate(data: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Return a copy of ``data`` with every ``${NAME}`` replaced from ``env``. ``$$`` is a literal ``$``."""
    if isinstance(data, str):
        return _interpolate_str(data, env, path)
    if isinstance(data, Mapping):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(data)]
    return data


def _interpolate_str(text: str, env: Mapping[str, str], path: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise InterpolationError(path, f"environment variable {name} is not set")

    return _REF.sub(replace, text)
