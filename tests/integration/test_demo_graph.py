"""``sentinel-signl4 demo --source graph`` tells the whole story against the Graph emulator and keeps its promises."""

from __future__ import annotations

import io
from pathlib import Path

from sentinel_signl4.demo import run_demo
from sentinel_signl4.logs import configure_logging


async def test_demo_in_graph_mode_pages_once_and_follows_a_merge(tmp_path: Path) -> None:
    lines: list[str] = []
    try:
        code = await run_demo(tmp_path / "demo", echo=lines.append, source="graph")
    finally:
        configure_logging(level="warning", stream=io.StringIO())
    text = "\n".join(lines)
    assert code == 0, text
    assert "Defender XDR (Microsoft Graph) tenant" in text and "skip: merged by Defender" in text
    assert "the Signl now follows the survivor" in text
    assert "Signls raised for the surviving incident: 0" in text
    assert "duplicate Signls: 0; matching incidents missed: 0" in text
    assert 'source = "graph"' in (tmp_path / "demo" / "config.toml").read_text(encoding="utf-8")
