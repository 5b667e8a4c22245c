"""Relative store paths resolve against a documented directory, never the working directory by accident.

A relative SQLite path (``sqlite:///sentinel-signl4.db``) and a relative ``[store] state_dir`` are taken relative
to ``$STATE_DIRECTORY`` when it is set (systemd's ``StateDirectory=`` sets it; with several directories, the first),
else to the directory of the config file. Under systemd the working directory is ``/``, so resolving against it
would put the database where the service cannot write, or somewhere nobody looks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote

from sentinel_signl4.config.schema import Config

__all__ = ["resolve_store_paths", "state_base"]

_SQLITE = "sqlite:///"


def state_base(config_dir: Path | None, env: Mapping[str, str]) -> Path | None:
    """The directory relative store paths resolve against: ``$STATE_DIRECTORY`` (first entry), else
    ``config_dir``; None when neither is known (a config parsed from text)."""
    state = env.get("STATE_DIRECTORY", "").split(":")[0].strip()
    if state:
        return Path(state).absolute()
    return config_dir.absolute() if config_dir is not None else None


def resolve_store_paths(config: Config, base: Path | None) -> Config:
    """``config`` with a relative SQLite file and a relative ``state_dir`` made absolute under ``base``."""
    if base is None:
        return config
    store = config.store
    update: dict[str, str] = {}
    if store.url.startswith(_SQLITE):
        rest = store.url[len(_SQLITE):]
        path = unquote(rest)
        # "/abs" (sqlite:////abs) is absolute; ":memory:", "" and query strings are left to the store's own errors.
        if path and not path.startswith("/") and not path.startswith((":memory:", "file:")) and "?" not in rest:
            update["url"] = _SQLITE + quote(str(base / path), safe="/")
    if store.state_dir and not os.path.isabs(store.state_dir):
        update["state_dir"] = str(base / store.state_dir)
    if not update:
        return config
    return config.model_copy(update={"store": store.model_copy(update=update)})
