"""Fixtures of this folder live in clients_world.py (importable by name, unlike a conftest); re-exported here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients_world import *  # noqa: F403
