"""Validate JSON bodies against the machine-readable specs in ``tests/specs`` (sources and licenses: its README).

Usage (``tests/`` is on ``sys.path`` through ``pythonpath`` in pyproject.toml)::

    from spec_validation import assert_valid, sentinel_errors
    assert_valid(body, "Incident")                     # Sentinel bundle definition
    assert sentinel_errors(body, "IncidentComment") == []

The Sentinel bundle (``sentinel-incidents.schema.json``) is draft-07 with local ``#/definitions`` refs; additional
properties are allowed, as in the swagger it was derived from. Formats (date-time, uuid) are checked.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, FormatChecker

__all__ = ["SPECS_DIR", "assert_valid", "schema_errors", "sentinel_bundle", "sentinel_errors"]

SPECS_DIR = Path(__file__).resolve().parent / "specs"


@functools.cache
def _bundle(name: str) -> dict[str, Any]:
    with (SPECS_DIR / name).open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def sentinel_bundle() -> dict[str, Any]:
    """The parsed Sentinel incidents bundle (cached)."""
    return _bundle("sentinel-incidents.schema.json")


@functools.cache
def _validator(bundle_name: str, definition: str) -> Draft7Validator:
    definitions = _bundle(bundle_name)["definitions"]
    if definition not in definitions:
        raise KeyError(f"{definition!r} is not defined in {bundle_name}")
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    return Draft7Validator(schema, format_checker=FormatChecker())


def schema_errors(instance: Any, definition: str, *, bundle: str = "sentinel-incidents.schema.json") -> list[str]:
    """Human-readable validation errors of ``instance`` against ``definition`` (empty when valid)."""
    errors = sorted(_validator(bundle, definition).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}" for error in errors]


def sentinel_errors(instance: Any, definition: str) -> list[str]:
    """:func:`schema_errors` against the Sentinel bundle."""
    return schema_errors(instance, definition)


def assert_valid(instance: Any, definition: str, *, bundle: str = "sentinel-incidents.schema.json") -> None:
    """Fail with every violation listed when ``instance`` does not match ``definition``."""
    errors = schema_errors(instance, definition, bundle=bundle)
    assert not errors, f"body does not match {definition}:\n  " + "\n  ".join(errors)
