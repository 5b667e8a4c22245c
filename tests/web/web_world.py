"""Fixtures for the web tests: a config with connectors in every webhook situation, a real SQLite store per test,
the app with an ASGI client, and the real ``Runtime`` for the server tests (no network is touched: nothing here
runs a connector cycle)."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from structlog.testing import capture_logs

from sentinel_signl4.bootstrap import Runtime, build_runtime
from sentinel_signl4.config import Config, parse_config
from sentinel_signl4.engine.health import ConnectorHealth
from sentinel_signl4.logs import configure_logging
from sentinel_signl4.metrics import Metrics
from sentinel_signl4.redact import Redactor
from sentinel_signl4.store import StateStore
from sentinel_signl4.store.factory import open_store
from sentinel_signl4.web import WebContext, build_console_app, build_web_app_from_context
from sentinel_signl4.web.console_auth import hash_password
from sentinel_signl4.web.webhook import webhook_path
from store_fixtures import run_sync, store_url_sqlite

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# Tokens with "/", "+", "&", "<" and ">": they must survive URL encoding and never show up escaped or raw.
ALPHA_TOKEN = "aLpHa/tok+en&<secret>-0123456789"
BRAVO_TOKEN = "bravo-token-9876543210abcdef"
POLL_TOKEN = "charlie-token-poll-mode-secret"
DISABLED_TOKEN = "echo-token-disabled-secret-42"
OFF_TOKEN = "foxtrot-token-off-mode-secret"
CLIENT_SECRET = "azure-client-secret-Q1w2E3r4"
TEAM_SECRET = "team-secret-5t6y7u8i9o"
API_KEY = "signl4-api-key-a1s2d3f4g5"
# Console users: the hashes are made once per run (scrypt is deliberately slow), with a fixed salt.
ADMIN, ADMIN_PASSWORD = "ada", "admin-password-<&>-123"
READER, READER_PASSWORD = "rex", "reader-password-456789"
ADMIN_HASH = hash_password(ADMIN_PASSWORD, salt=b"test-salt-admin")
READER_HASH = hash_password(READER_PASSWORD, salt=b"test-salt-read")
SECRETS = (ADMIN_PASSWORD, READER_PASSWORD, ALPHA_TOKEN, BRAVO_TOKEN,
           POLL_TOKEN, DISABLED_TOKEN, OFF_TOKEN, CLIENT_SECRET, TEAM_SECRET, API_KEY)

_CONNECTOR = """
[[connectors]]
name = "{name}"
display_name = "{display}"
enabled = {enabled}
[connectors.azure]
tenant_id = "11111111-1111-1111-1111-111111111111"
subscription_id = "22222222-2222-2222-2222-222222222222"
resource_group = "rg"
workspace_name = "law-{name}"
[connectors.azure.credential]
client_id = "client-id"
client_secret = "{client_secret}"
[connectors.signl4]
webhook_url = "https://connect.signl4.com/webhook/{team_secret}"
api_key = "{api_key}"
[connectors.sync]
mode = "{mode}"
{token_line}
"""


_CONSOLE = f"""
[logging]
format = "json"
[console]
host = "127.0.0.1"
port = 0
[[console.users]]
name = "{ADMIN}"
role = "admin"
password_hash = "{ADMIN_HASH}"
[[console.users]]
name = "{READER}"
role = "read"
password_hash = "{READER_HASH}"
"""


def config_text(db_url: str, *, public_url: str = "https://s4.example.org", port: int = 0) -> str:
    """A config with one connector per webhook situation (see the table in web/webhook.py), and two console users
    (an admin and a reader)."""
    connectors = [
        ("alpha", "Alpha <Corp> & Co", "true", "webhook", ALPHA_TOKEN),
        ("bravo", "Bravo", "true", "auto", BRAVO_TOKEN),  # auto + token + api_key = both
        ("charlie", "Charlie", "true", "poll", POLL_TOKEN),
        ("delta", "Delta", "true", "auto", None),  # auto without token = poll
        ("echo", "Echo", "false", "webhook", DISABLED_TOKEN),
        ("foxtrot", "Foxtrot", "true", "off", OFF_TOKEN),
    ]
    text = f'[store]\nurl = "{db_url}"\n[server]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "{public_url}"\n'
    text += _CONSOLE
    for name, display, enabled, mode, token in connectors:
        token_line = f"webhook_token = {json.dumps(token)}" if token else ""
        text += _CONNECTOR.format(name=name, display=display, enabled=enabled, mode=mode, token_line=token_line,
                                  client_secret=CLIENT_SECRET, team_secret=TEAM_SECRET, api_key=API_KEY)
    return text


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file, made once; each test works on its own copy (much faster than migrating)."""
    path = tmp_path_factory.mktemp("template") / "state.db"

    async def migrate() -> None:
        async with open_store(f"sqlite:///{path}") as store:
            await store.migrate()

    run_sync(migrate())
    return path


@pytest.fixture
def db_path(tmp_path: Path, migrated_database: Path) -> Path:
    """This test's database (the file ``config`` points at), migrated and empty."""
    path = tmp_path / "state.db"
    shutil.copyfile(migrated_database, path)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse_config(config_text(store_url_sqlite(tmp_path)), env={})


@dataclass
class Harness:
    """What ``build_web_app`` takes from a ``Runtime`` (store, metrics, each connector's live health), without
    building the clients of six connectors per test. The server tests use a real ``Runtime``."""

    config: Config
    store: StateStore
    metrics: Metrics
    health: dict[str, ConnectorHealth]

    def context(self) -> WebContext:
        return WebContext(config=self.config, store=self.store, metrics=self.metrics, health=self.health,
                          clock=lambda: NOW, redactor=Redactor(self.config.secrets()))


@pytest.fixture
async def harness(config: Config, db_path: Path) -> AsyncIterator[Harness]:
    async with open_store(config.store.url) as store:
        yield Harness(config, store, Metrics(), {c.name: ConnectorHealth(c.name) for c in config.connectors})


@pytest.fixture
def app(harness: Harness) -> Starlette:
    return build_web_app_from_context(harness.context(), ready_timeout=0.2)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


@pytest.fixture
def audit_log() -> io.StringIO:
    """Where the console app of the ``console`` fixture writes its audit events."""
    return io.StringIO()


@pytest.fixture
def console_app(harness: Harness, audit_log: io.StringIO) -> Starlette:
    return build_console_app(harness.context(), audit_stream=audit_log)


@pytest.fixture
async def console(console_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the console app that reads as the admin with Basic auth (no session: it cannot act)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=console_app), base_url="http://testserver",
                                 auth=(ADMIN, ADMIN_PASSWORD)) as c:
        yield c


@pytest.fixture
async def browser(console_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the console app with no credentials (it keeps cookies, like a browser)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=console_app),
                                 base_url="http://testserver") as c:
        yield c


_HIDDEN = re.compile(r'<input type="hidden" name="(login_csrf|csrf)" value="([^"]+)">')


async def sign_in(client: httpx.AsyncClient, name: str, password: str) -> str:
    """Sign in through the login form like a browser; return the session's CSRF token (from a page's form)."""
    form = await client.get("/login")
    [(_, login_csrf)] = _HIDDEN.findall(form.text)
    response = await client.post("/login", data={"login_csrf": login_csrf, "username": name, "password": password})
    assert response.status_code == 303, response.text
    page = await client.get("/")
    assert page.status_code == 200, page.text
    return dict(_HIDDEN.findall(page.text))["csrf"]


def audit_events(audit_log: io.StringIO) -> list[dict[str, Any]]:
    """The console's audit events (JSON lines)."""
    return [json.loads(line) for line in audit_log.getvalue().splitlines() if line.strip()]


@pytest.fixture
async def runtime(config: Config, db_path: Path) -> AsyncIterator[Runtime]:
    """The real composition root on this test's database (nothing here runs a connector cycle)."""
    rt = await build_runtime(config, clock=lambda: NOW, migrate=False)
    yield rt
    await rt.aclose()


@pytest.fixture
def captured_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event of the test, whatever level filter an earlier test left configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
                        cache_logger_on_first_use=False)
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)


@pytest.fixture
def production_logs(config: Config) -> Iterator[io.StringIO]:
    """The process's real logging setup (``configure_logging`` with the config's secrets) writing into a buffer;
    the previous structlog and stdlib configuration is restored afterwards."""
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging(level="debug", fmt="json", secrets=config.secrets(), stream=buffer)
    try:
        yield buffer
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


@dataclass(frozen=True)
class InboxRow:
    connector: str
    event_id: str
    payload: Any
    state: str


def inbox_rows(db_path: Path) -> list[InboxRow]:
    """Every inbox row, read straight from the SQLite file (independent of the store code under test)."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT connector, event_id, payload, state FROM inbox ORDER BY connector, event_id")
        return [InboxRow(c, e, json.loads(p), s) for c, e, p, s in rows.fetchall()]


def alpha_path() -> str:
    return webhook_path("alpha", ALPHA_TOKEN)


def event(event_id: Any = "dd209a2d-e037-41ee-b37d-f605cc0a39fb", event_type: Any = 201,
          **extra: Any) -> dict[str, Any]:
    """A SIGNL4 'Signl confirmed' event (signl4-api.md §2.3) with the given id and type."""
    body: dict[str, Any] = {
        "eventType": event_type,
        "eventRaisedUtc": "2017-09-01T08:11:37.4815663Z",
        "subscription": {"id": "0acf8014-22f2-4503-88d7-f7d05b46744f"},
        "user": {"username": "Rene", "mailaddress": "rene@signl4.com", "id": "f0bd5063-9588-51cf-b3d9-94e5647dedc5"},
        "alert": {"statusCode": 2, "eventId": "2518783235949759942_fbc7b4a4", "externalEventId": "INC091210",
                  "acknowledgedUserIds": ["f0bd5063-9588-51cf-b3d9-94e5647dedc5"], "id": "2518981069381242800_2ab1"},
        "id": event_id,
    }
    body.update(extra)
    return body
