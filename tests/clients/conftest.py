"""Fixtures of this folder live in clients_world.py (importable by name, unlike a conftest); registered here by name.

``tests/clients`` is on ``sys.path`` through ``pythonpath`` in pyproject.toml.
"""

from clients_world import (  # noqa: F401 - fixtures, found by pytest in this module's namespace
    clock,
    http,
    instant_retries,
    sent,
    sentinel,
    signl4,
    state,
    stats,
    tokens,
    world,
)
