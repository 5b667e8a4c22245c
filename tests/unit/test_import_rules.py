"""The layering rules of docs/architecture.md, read from the source with ``ast`` (every import counts: at module
level, inside functions and under ``TYPE_CHECKING``).

* ``sentinel_signl4.domain`` imports nothing of ours outside the domain (so no client and no source adapter).
* ``sentinel_signl4.engine`` imports no client, configuration, source, web or emulator module.
* ``sentinel_signl4.clients`` import no source adapter and nothing of the engine.
* A vendor's wire module (``sources/sentinel_wire.py``, ``sources/graph_wire.py``) is imported only by that vendor's
  adapter (``sources/sentinel*``, ``sources/graph*``) and by the demo's view of the emulated vendor.
* Rendering imports only downwards: ``domain.render`` → ``domain.evidence`` → ``domain.text_fit``, and
  ``domain.minimal_signl`` only ``text_fit`` and the Signl type; nothing below imports what is above it.
* ``sentinel_signl4_emulators`` imports nothing of the product.
* The product imports the emulators only in the ``demo`` / ``emulate`` entry points.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ROOT / "src" / "sentinel_signl4"
EMULATORS = ROOT / "emulators" / "src" / "sentinel_signl4_emulators"

#: The engine's imports of outer layers that are allowed anyway: none today. An entry must name an import that exists
#: (``test_every_engine_exception_is_still_needed``), so the list cannot keep a door open after the import is gone.
ENGINE_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset()

#: The product modules that may import the emulators: ``sentinel-signl4 demo`` and ``emulate`` (the ``demo`` extra).
EMULATOR_ENTRY_POINTS = frozenset({
    "sentinel_signl4.cli",
    "sentinel_signl4.demo",
    "sentinel_signl4.demo_config",
    "sentinel_signl4.demo_sources",
    "sentinel_signl4.emulate",
})

#: Each vendor's wire module and the modules that may import it: the vendor's adapter, and ``demo_sources`` (the demo
#: shows the emulated incidents through the same read mapping the connector uses, to predict what it will do).
WIRE_MODULES = {
    "sentinel_signl4.sources.sentinel_wire": "sentinel_signl4.sources.sentinel",
    "sentinel_signl4.sources.graph_wire": "sentinel_signl4.sources.graph",
}
DEMO_VIEW = "sentinel_signl4.demo_sources"

ENGINE_FORBIDDEN = ("sentinel_signl4.clients", "sentinel_signl4.config", "sentinel_signl4.sources",
                    "sentinel_signl4.web", "sentinel_signl4_emulators")


def _module_name(path: Path, package_dir: Path) -> str:
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package_dir: Path) -> Iterator[str]:
    """Every module ``path`` imports, relative imports resolved; ``from a import b`` yields ``a.b`` and ``a``."""
    module = _module_name(path, package_dir)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _edges(package_dir: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(package_dir.rglob("*.py")):
        module = _module_name(path, package_dir)
        for imported in _imports(path, package_dir):
            yield module, imported


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_rules_see_the_imports_they_judge() -> None:
    # The reader must find imports of every kind, or every rule below would pass on an empty list.
    edges = set(_edges(PRODUCT))
    assert ("sentinel_signl4.cli", "sentinel_signl4_emulators") in edges  # inside a function
    assert ("sentinel_signl4.domain.graph_vocab", "sentinel_signl4.domain.enums") in edges
    assert any(_within(b, "sentinel_signl4_emulators.common") for _a, b in _edges(EMULATORS))


def test_domain_imports_nothing_of_ours_outside_the_domain() -> None:
    bad = sorted((a, b) for a, b in _edges(PRODUCT) if _within(a, "sentinel_signl4.domain")
                 and (_within(b, "sentinel_signl4") or _within(b, "sentinel_signl4_emulators"))
                 and not _within(b, "sentinel_signl4.domain"))
    assert bad == []


def test_engine_imports_no_client_config_source_web_or_emulator() -> None:
    bad = sorted((a, b) for a, b in _edges(PRODUCT) if _within(a, "sentinel_signl4.engine")
                 and any(_within(b, layer) for layer in ENGINE_FORBIDDEN)
                 and not any(a == mod and _within(b, target) for mod, target in ENGINE_EXCEPTIONS))
    assert bad == []


def test_every_engine_exception_is_still_needed() -> None:
    edges = set(_edges(PRODUCT))
    stale = sorted((mod, target) for mod, target in ENGINE_EXCEPTIONS
                   if not any(a == mod and _within(b, target) for a, b in edges))
    assert stale == []


#: The rendering modules from the top down: each may import those after it, never those before it.
RENDER_LAYERS = ("sentinel_signl4.domain.render", "sentinel_signl4.domain.minimal_signl",
                 "sentinel_signl4.domain.evidence", "sentinel_signl4.domain.text_fit")


def test_rendering_imports_only_downwards() -> None:
    edges = set(_edges(PRODUCT))
    assert ("sentinel_signl4.domain.render", "sentinel_signl4.domain.evidence") in edges
    upward = sorted((a, b) for a, b in edges for i, upper in enumerate(RENDER_LAYERS)
                    if a in RENDER_LAYERS[i + 1:] and b == upper)
    assert upward == []
    # text_fit is the bottom: it imports nothing of ours at all.
    assert {b for a, b in edges if a == RENDER_LAYERS[-1] and _within(b, "sentinel_signl4")} == set()


def test_clients_import_no_source_adapter_and_nothing_of_the_engine() -> None:
    bad = sorted((a, b) for a, b in _edges(PRODUCT) if _within(a, "sentinel_signl4.clients")
                 and (_within(b, "sentinel_signl4.sources") or _within(b, "sentinel_signl4.engine")))
    assert bad == []


def test_only_a_vendors_adapter_imports_its_wire_module() -> None:
    edges = set(_edges(PRODUCT))
    for wire, adapter in WIRE_MODULES.items():
        importers = {a for a, b in edges if b == wire}
        assert adapter in importers  # the rule sees the imports it judges
        assert {a for a in importers if not a.startswith(adapter) and a != DEMO_VIEW} == set(), wire


def test_emulators_import_nothing_of_the_product() -> None:
    bad = sorted((a, b) for a, b in _edges(EMULATORS) if _within(b, "sentinel_signl4"))
    assert bad == []


def test_product_imports_emulators_only_in_the_demo_entry_points() -> None:
    bad = sorted((a, b) for a, b in _edges(PRODUCT) if _within(b, "sentinel_signl4_emulators")
                 and a not in EMULATOR_ENTRY_POINTS)
    assert bad == []
