"""``sentinel-signl4 webhook-url``: the one command that prints a secret, on purpose."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from sentinel_signl4.cli import app
from store_fixtures import store_url_sqlite
from web_world import ALPHA_TOKEN, SECRETS, config_text, event, inbox_rows


def write_config(tmp_path: Path, public_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text(store_url_sqlite(tmp_path), public_url=public_url), encoding="utf-8")
    return path


def webhook_url(config: Path, connector: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["webhook-url", "--config", str(config), "--connector", connector])
    return result.exit_code, result.stdout, result.stderr


async def test_prints_the_url_that_the_server_accepts(tmp_path: Path, client: httpx.AsyncClient,
                                                      db_path: Path) -> None:
    code, out, err = webhook_url(write_config(tmp_path, public_url="https://s4.example.org/"), "alpha")
    assert code == 0
    assert out == f"https://s4.example.org/webhooks/signl4/alpha/{quote(ALPHA_TOKEN, safe='')}\n"
    assert 'Integrations → Gallery → "Webhook (Outbound)"' in err
    # The printed URL, as SIGNL4 would call it, lands in the inbox (same config, same database).
    response = await client.post(urlsplit(out.strip()).path, json=event())
    assert response.status_code == 202
    assert len(inbox_rows(db_path)) == 1


def test_warns_when_the_token_would_travel_in_clear_text(tmp_path: Path) -> None:
    code, out, err = webhook_url(write_config(tmp_path, public_url="http://s4.example.org"), "bravo")
    assert code == 0
    assert out.startswith("http://s4.example.org/webhooks/signl4/bravo/")
    assert "clear text" in err


@pytest.mark.parametrize(("connector", "public_url", "expected"), [
    ("alpha", "", "[server] public_url is not set"),
    ("alpha", "s4.example.org", "public_url must start with https://"),
    ("nosuch", "https://s4.example.org", "no connector named 'nosuch'; known: alpha, bravo, charlie"),
    ("delta", "https://s4.example.org", "connector 'delta' has no sync.webhook_token"),
    ("charlie", "https://s4.example.org", "connector 'charlie' has sync.mode = 'poll'"),
    ("foxtrot", "https://s4.example.org", "connector 'foxtrot' has sync.mode = 'off'"),
    ("echo", "https://s4.example.org", "connector 'echo' is disabled"),
])
def test_explains_why_there_is_no_url_and_prints_no_secret(tmp_path: Path, connector: str, public_url: str,
                                                          expected: str) -> None:
    code, out, err = webhook_url(write_config(tmp_path, public_url=public_url), connector)
    assert code == 2
    assert out == ""
    assert expected in err
    assert not any(secret in err for secret in SECRETS)


def test_help_warns_that_the_output_is_secret() -> None:
    result = CliRunner().invoke(app, ["webhook-url", "--help"])
    assert result.exit_code == 0
    assert "CONTAINS THE SECRET" in result.stdout
