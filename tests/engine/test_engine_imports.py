"""The engine is the product's core: importing it must load no SDK and no HTTP stack, only the domain, the store
interface and the vendor-neutral error types. Checked in a fresh interpreter, where ``sys.modules`` shows exactly
what an import pulled in."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import sentinel_signl4.engine

#: Top-level packages the engine must not load: cloud SDKs, HTTP clients, the config models, database drivers.
FORBIDDEN = ("azure", "msal", "httpx", "httpcore", "aiohttp", "pydantic", "asyncpg", "sqlalchemy", "cryptography")
#: Our own packages that are adapters or configuration, never engine dependencies.
FORBIDDEN_OURS = ("sentinel_signl4.clients", "sentinel_signl4.sources", "sentinel_signl4.config",
                  "sentinel_signl4_emulators", "sentinel_signl4.bootstrap")

ENGINE_MODULES = sorted(m.name for m in pkgutil.iter_modules(sentinel_signl4.engine.__path__,
                                                             "sentinel_signl4.engine."))


def _loaded_after_import(*modules: str) -> list[str]:
    code = ("import importlib, json, sys\n"
            f"for name in {list(modules)!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def _offenders(loaded: list[str]) -> list[str]:
    return [m for m in loaded
            if m.split(".")[0] in FORBIDDEN or any(m == p or m.startswith(p + ".") for p in FORBIDDEN_OURS)]


def test_the_outbox_loads_no_sdk() -> None:
    loaded = _loaded_after_import("sentinel_signl4.engine.outbox")
    assert "sentinel_signl4.engine.outbox" in loaded
    assert _offenders(loaded) == []
def test_the_whole_engine_loads_no_sdk_no_client_and_no_config_model() -> None:
    assert len(ENGINE_MODULES) > 10  # the listing found the engine, not an empty package
    loaded = _loaded_after_import(*ENGINE_MODULES)
    assert _offenders(loaded) == []
