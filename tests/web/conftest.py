"""Fixtures of this folder live in web_world.py (importable by name, unlike a conftest); registered here by name.

``tests/web`` is on ``sys.path`` through ``pythonpath`` in pyproject.toml.
"""

from web_world import (  # noqa: F401 - fixtures, found by pytest in this module's namespace
    app,
    audit_log,
    browser,
    captured_logs,
    client,
    config,
    console,
    console_app,
    db_path,
    harness,
    migrated_database,
    production_logs,
    runtime,
)
