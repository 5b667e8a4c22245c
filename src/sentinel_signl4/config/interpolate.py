"""References in any string of the config.

* ``${ENV_NAME}`` and ``${ENV_NAME:-default}``: an environment variable.
* ``${file:/run/secrets/name}``: the content of a file (Docker and Kubernetes secrets), trailing newlines stripped.
* ``$$`` is a literal ``$``.

Further schemes (``${keyvault:…}``) are resolved by a caller-supplied resolver for their scheme name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["InterpolationError", "Resolver", "interpolate", "read_secret_file", "resolve_references"]

# A scheme's target never starts with "-", so ${lowercase_env:-default} stays an environment reference.
_REF = re.compile(r"\$\{(?:(?P<scheme>[a-z]+):(?P<target>[^}\-][^}]*)"
                  r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?)\}|\$\$")

Resolver = Callable[[str, str], str]
"""Returns the value a ``${scheme:target}`` reference stands for, given ``target`` and the config key it is in;
raises ``ValueError`` with a reason that contains no secret."""


class InterpolationError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def read_secret_file(target: str, _key: str = "") -> str:
    """The content of a secret file without its trailing newline(s) (``echo secret > file`` adds one)."""
    path = Path(target)
    if not path.is_absolute():
        raise ValueError(f"secret file {target!r} must be an absolute path")
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read secret file {target}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise ValueError(f"secret file {target} is not UTF-8 text") from None


def interpolate(data: Any, env: Mapping[str, str], path: str = "", *,
                resolvers: Mapping[str, Resolver] | None = None) -> Any:
    """Return a copy of ``data`` with every reference replaced. ``resolvers`` adds schemes beside ``file``."""
    schemes: dict[str, Resolver] = {"file": read_secret_file, **(resolvers or {})}
    return _walk(data, env, path, schemes)


def _walk(data: Any, env: Mapping[str, str], path: str, schemes: Mapping[str, Resolver]) -> Any:
    if isinstance(data, str):
        return _interpolate_str(data, env, path, schemes)
    if isinstance(data, Mapping):
        return {k: _walk(v, env, f"{path}.{k}" if path else str(k), schemes) for k, v in data.items()}
    if isinstance(data, list):
        return [_walk(v, env, f"{path}[{i}]", schemes) for i, v in enumerate(data)]
    return data


def _interpolate_str(text: str, env: Mapping[str, str], path: str, schemes: Mapping[str, Resolver]) -> str:
    value, problems = resolve_references(text, env, schemes, path)
    if problems:
        raise InterpolationError(path, problems[0])
    return value


def resolve_references(text: str, env: Mapping[str, str], schemes: Mapping[str, Resolver],
                       path: str = "") -> tuple[str, list[str]]:
    """``text`` with its references replaced, and why each one that could not be resolved was not (an unresolved
    reference becomes ""). For callers that report every problem at once rather than the first."""
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        scheme = match.group("scheme")
        if scheme is not None:
            resolver = schemes.get(scheme)
            if resolver is None:
                problems.append(f"unknown reference ${{{scheme}:…}}; known: "
                                f"{', '.join(sorted(schemes))} (and ${{ENV_NAME}})")
                return ""
            try:
                return resolver(match.group("target").strip(), path)
            except ValueError as exc:
                problems.append(str(exc))
                return ""
        name, default = match.group("name"), match.group("default")
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"environment variable {name} is not set")
        return ""

    return _REF.sub(replace, text), problems
