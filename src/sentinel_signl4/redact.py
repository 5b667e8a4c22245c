"""Keep secrets out of every string that can leave the process: log lines, error messages, reprs.

Two complementary tools:

* :func:`redact_url` knows *where* secrets sit in the URLs we build: the SIGNL4 team secret is a path segment
  (``/webhook/<secret>``, ``/api/v2/events/<secret>``), passwords hide in userinfo, and tokens or keys ride in
  query parameters. It needs no knowledge of the actual values.
* :class:`Redactor` knows *which* literal values are secret (client secret, team secret, API key) and scrubs them
  from any text, including text a remote system wrote (SIGNL4 echoes a wrong team secret in its 404 details).

Both are used at the clients' request choke points and by the logging processor, so a secret never reaches an
exception message in the first place.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:  # the engine (the watchdog) redacts too, and must not load an HTTP stack for it
    import httpx

__all__ = [
    "MASK",
    "Redactor",
    "SecretLike",
    "redact_text",
    "redact_url",
    "reveal",
]

MASK = "***"

# Path segments that *are* the credential: the SIGNL4 team/integration secret. The events route is also used for
# `GET /v2/events/{eventId}`, which is not secret; masking it there too is a deliberate over-approximation.
_SECRET_PATH = re.compile(r"(?P<prefix>/(?:webhook|v2/events)/)(?P<secret>[^/?#]+)", re.IGNORECASE)

# Query parameter names that carry credentials (x-s4-api-key, sig, code, client_secret, access_token, …).
_SECRET_PARAM = re.compile(r"key|secret|token|code|sig|passw|pwd|assertion|credential", re.IGNORECASE)
# Paging cursors whose names happen to contain "token" but that are not secrets and help debugging.
_PAGING_PARAMS = frozenset({"$skiptoken", "skiptoken", "continuationtoken"})

# Free-text patterns: bearer tokens and `key=value` pairs in messages that were not built by us.
_BEARER = re.compile(r"(?P<prefix>\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+", re.IGNORECASE)


@runtime_checkable
class SecretLike(Protocol):
    """Anything that hides its value behind ``get_secret_value()`` (pydantic's ``SecretStr`` and friends)."""

    def get_secret_value(self) -> str: ...


def reveal(value: str | SecretLike | None) -> str | None:
    """The plain value of a secret, for the one place that must send it (a header, a credential constructor)."""
    if value is None:
        return None
    if isinstance(value, SecretLike):
        return value.get_secret_value()
    return value


def redact_url(url: str | httpx.URL) -> str:
    """Return ``url`` with every credential replaced by ``***``; safe to log and to put in error messages.

    Masks the SIGNL4 team secret path segment, a userinfo password and query parameters whose name looks like a
    credential (key, secret, token, code, sig, password, assertion). ``$skipToken``/``continuationToken`` stay,
    because they are paging cursors, not credentials.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        # Not parseable as a URL (e.g. a malformed port): fall back to pattern masking of the whole string.
        return _SECRET_PATH.sub(lambda m: m.group("prefix") + MASK, text)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else f"{MASK}@{hostport}"
    path = _SECRET_PATH.sub(lambda m: m.group("prefix") + MASK, parts.path)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        masked = [
            (name, MASK if _is_secret_param(name) else value) for name, value in pairs
        ]
        # Keep `*` and `$` readable; nothing else matters for a log line.
        query = urlencode(masked, safe="*$/:',()")
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def _is_secret_param(name: str) -> bool:
    return name.casefold() not in _PAGING_PARAMS and _SECRET_PARAM.search(name) is not None


def redact_text(text: str) -> str:
    """Mask what can be recognised without knowing the values: bearer tokens and credentials inside URLs."""
    text = _BEARER.sub(lambda m: m.group("prefix") + MASK, text)
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


class Redactor:
    """Replaces a known set of literal secret values in any text.

    Each value is also matched in its URL-encoded forms, because a secret with ``+`` or ``/`` appears encoded in a
    request URL. Longer secrets are replaced first so that a secret containing another one is masked whole.
    """

    __slots__ = ("_pattern", "_secrets")

    def __init__(self, secrets: Iterable[str | SecretLike | None] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def __repr__(self) -> str:
        # Never show the values; the count is enough to debug "is my secret registered?".
        return f"Redactor({len(self._secrets)} secrets)"

    def add(self, *secrets: str | SecretLike | None) -> None:
        """Register more secret values; ``None`` and empty strings are ignored."""
        for secret in secrets:
            plain = reveal(secret)
            if not plain:
                continue
            self._secrets.update({plain, quote(plain, safe=""), quote_plus(plain, safe="")})
        self._pattern = (
            re.compile("|".join(re.escape(s) for s in sorted(self._secrets, key=len, reverse=True)))
            if self._secrets else None
        )

    def redact(self, text: str) -> str:
        """``text`` with every known secret and every recognisable credential replaced by ``***``."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return redact_text(text)

    def contains_secret(self, text: str) -> bool:
        """Whether ``text`` contains any registered secret (used by tests and by defensive checks)."""
        return self._pattern is not None and self._pattern.search(text) is not None

    def __call__(self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """A structlog processor: redacts every string value of the event (nested containers included)."""
        for key, value in list(event_dict.items()):
            event_dict[key] = self._redact_value(value)
        return event_dict

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, BaseException):
            return self.redact(f"{type(value).__name__}: {value}")
        if isinstance(value, dict):
            return {k: self._redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._redact_value(v) for v in value)
        loaded = sys.modules.get("httpx")  # an httpx.URL exists only when httpx was loaded by someone
        if loaded is not None and isinstance(value, loaded.URL):
            return self.redact(redact_url(value))
        return value
