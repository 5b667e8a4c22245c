"""Fixtures of this folder live in emulators_world.py (importable by name, unlike a conftest); registered here by name.

``tests/emulators`` is on ``sys.path`` through ``pythonpath`` in pyproject.toml.
"""

from emulators_world import (  # noqa: F401 - fixtures, found by pytest in this module's namespace
    arm,
    clock,
    demo_certificate,
    graph,
    http,
    https_world,
    state,
    world,
)
