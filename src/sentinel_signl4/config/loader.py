"""Load, interpolate and validate a TOML config; errors name the file, the key and the reason."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sentinel_signl4.config.interpolate import InterpolationError, interpolate
from sentinel_signl4.config.keyvault import KeyVaultReadError, parse_ref, read_references
from sentinel_signl4.config.paths import resolve_store_paths, state_base
from sentinel_signl4.config.schema import Config

__all__ = ["ConfigError", "load_config", "parse_config", "validate_config_data"]


class ConfigError(Exception):
    """Invalid configuration. ``problems`` lists ``(key, reason)``; ``str()`` is ready to print."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"{source}: {key}: {reason}" if key else f"{source}: {reason}" for key, reason in self.problems]
        super().__init__("\n".join(lines))


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read and validate ``path``. A relative SQLite path resolves against ``$STATE_DIRECTORY``, else the
    directory of ``path`` (config/paths.py)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read the file: {exc.strerror or exc}")]) from None
    return parse_config(text, source=source, env=env, config_dir=Path(path).absolute().parent)


def parse_config(text: str, *, source: str = "<config>", env: Mapping[str, str] | None = None,
                 config_dir: Path | None = None) -> Config:
    """Validate config ``text``. Relative store paths resolve against ``$STATE_DIRECTORY``, else ``config_dir``;
    with neither, they stay relative."""
    environ = os.environ if env is None else env
    return resolve_store_paths(_parse(text, source, environ), state_base(config_dir, environ))


def _parse(text: str, source: str, env: Mapping[str, str]) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [("", f"not valid TOML: {exc}")]) from None
    return validate_config_data(raw, source=source, env=env)


def validate_config_data(raw: dict[str, Any], *, source: str, env: Mapping[str, str]) -> Config:
    """Validate an already parsed config (``provision apply`` edits the TOML's data before it checks the result):
    references resolved, every problem reported at once. Store paths are left as given."""
    try:
        data = _interpolate(raw, env)
    except InterpolationError as exc:
        raise ConfigError(source, [(exc.path, str(exc))]) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A list whose items failed is also reported "too short"; the item errors say more.
        errors = [e for e in errors if not (e["type"] == "too_short" and any(
            len(o["loc"]) > len(e["loc"]) and o["loc"][: len(e["loc"])] == e["loc"] for o in errors))]
        raise ConfigError(source, [(_key(err["loc"], data), _reason(err)) for err in errors]) from None
    except (OverflowError, MemoryError, RecursionError) as exc:
        # Every bounded setting reports its own key; this is the last line so `config validate` never crashes.
        raise ConfigError(source, [("", f"a value is out of range ({type(exc).__name__}); check the numbers and "
                                        "durations")]) from None


def _interpolate(raw: dict[str, Any], env: Mapping[str, str]) -> Any:
    """Environment and file references first; then ``${keyvault:…}`` ones, read with the identity that the
    otherwise resolved config names (config/keyvault.py)."""
    found: dict[str, str] = {}

    def collect(target: str, key: str) -> str:
        parse_ref(target)  # a malformed reference is an error naming its key, before anything is read
        found.setdefault(target, key)
        return ""

    first = interpolate(raw, env, resolvers={"keyvault": collect})
    if not found:
        return first
    try:
        values = read_references(found, first)
    except KeyVaultReadError as exc:
        raise InterpolationError(found.get(exc.target, next(iter(found.values()))), str(exc)) from None
    return interpolate(raw, env, resolvers={"keyvault": lambda target, _key: values[target]})


def _key(loc: tuple[int | str, ...], data: Any) -> str:
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    label += f" ({node['name']})"
            parts.append(label)
        else:
            parts.append(f".{item}" if parts else item)
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def _reason(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "required setting is missing"
    if kind == "extra_forbidden":
        return "unknown setting (check the spelling; see `sentinel-signl4 config example`)"
    message = str(err.get("msg", "invalid value"))
    # Pydantic prefixes messages of custom validators; the rest of the text is ours.
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    if kind.endswith("enum") or kind == "literal_error":
        return message.replace("Input should be", "must be one of:")
    return message
