"""The README's configuration reference is the shipped example, verbatim (run with UPDATE_README=1 to refresh)."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN = "<!-- BEGIN EXAMPLE CONFIG (generated from src/sentinel_signl4/example-config.toml) -->"
END = "<!-- END EXAMPLE CONFIG -->"


def test_readme_embeds_the_current_example_config() -> None:
    example = resources.files("sentinel_signl4").joinpath("example-config.toml").read_text(encoding="utf-8")
    block = f"{BEGIN}\n```toml\n{example.rstrip()}\n```\n{END}"
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    assert pattern.search(text), "README lost its example-config markers"
    if os.environ.get("UPDATE_README") == "1":
        README.write_text(pattern.sub(lambda _m: block, text), encoding="utf-8")
        text = README.read_text(encoding="utf-8")
    assert block in text, "README's example config is stale: run UPDATE_README=1 pytest tests/unit/test_readme.py"


def test_readme_gives_the_two_fresh_machine_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "python3 dev.py demo" in text and "python3 dev.py test" in text
    assert "python3 dev.py test" in (README.parent / ".ci" / "run").read_text(encoding="utf-8")


def test_every_test_the_guarantees_table_names_exists() -> None:
    """A guarantee whose test was renamed or deleted would otherwise go on being promised by name."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Guarantees"):text.index("## Configuration reference")]
    tests_dir = README.parent / "tests"
    sources = [path.read_text(encoding="utf-8") for path in tests_dir.rglob("*.py")]
    defined = {name for source in sources for name in re.findall(r"def (test_\w+)", source)}
    named = set(re.findall(r"`(test_\w+)(?:\[[^\]]*\])?`", table))
    assert named, "the Guarantees table names no test"
    assert sorted(named - defined) == []
    files = {Path(f).name for f in re.findall(r"`((?:tests/)?[\w/]*test_\w+\.py)`", table)}
    present = {path.name for path in tests_dir.rglob("test_*.py")}
    assert sorted(files - present) == []
