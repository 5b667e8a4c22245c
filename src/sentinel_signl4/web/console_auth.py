"""Who is asking the console, and may they: password hashes, sessions, roles and the CSRF check.

* Passwords are stored only as stdlib scrypt hashes (``scrypt$N$r$p$salt$hash``, printed by ``sentinel-signl4
  console hash-password``); a wrong name costs the same scrypt work as a wrong password.
* A browser logs in with a form and gets a session: a random id in an ``HttpOnly; SameSite=Strict`` cookie, kept in
  memory only (a restart logs everyone out), valid for ``[console] session_ttl``. Each session has its own CSRF
  token, which every state-changing form carries back (session-bound synchroniser token); the login form itself
  uses a double-submit cookie, so a foreign site cannot log a browser in under the attacker's name.
* Scripts may read with HTTP Basic auth (``curl -u``); Basic auth never authorises a state-changing request,
  because a browser replays cached Basic credentials on cross-site requests.
* Wrong passwords lock the user name and the client address for a while (``login_throttle.py``), for forms and
  Basic auth alike. Passwords are checked in a worker thread, at most two at a time, so a flood of sign-ins
  never stalls the event loop that pages.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sentinel_signl4.config import ConsoleConfig
from sentinel_signl4.web.login_throttle import LoginThrottle

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "ConsoleAuth",
    "LoginThrottled",
    "Principal",
    "csrf_matches",
    "hash_password",
    "verify_password",
]

SESSION_COOKIE = "s4s_console"
LOGIN_COOKIE = "s4s_login"
Role = Literal["read", "admin"]

# scrypt cost: 16 MiB and some 50 ms per check on a small machine; stored in each hash, so it can be raised later.
_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024
# The hash a missing user name is checked against, so that an unknown name takes as long as a wrong password.
_DUMMY_SALT = b"sentinel-signl4-no-such-user"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The ``scrypt$N$r$p$salt$hash`` form of ``password`` (a fresh random salt unless given)."""
    if not password:
        raise ValueError("the password is empty")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a malformed hash matches nothing)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                                maxmem=_MAXMEM, dklen=len(expected))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


class LoginThrottled(Exception):
    """Too many wrong passwords for this user name or address: refused before the password is checked."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, round(retry_after + 0.5))
        super().__init__(f"too many failed sign-ins: try again in {self.retry_after} s")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated console user. ``csrf`` is the session's token (None for Basic auth: it cannot act)."""

    name: str
    role: Role
    csrf: str | None = None
    session: str | None = None

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclass(slots=True)
class _Session:
    principal: Principal
    expires_at: datetime


class ConsoleAuth:
    """The console's users (from ``[console]``) and its live sessions."""

    def __init__(self, config: ConsoleConfig, clock: Callable[[], datetime],
                 throttle: LoginThrottle | None = None) -> None:
        self._users: Mapping[str, tuple[Role, str]] = {
            u.name: (u.role, u.password_hash.get_secret_value()) for u in config.users}
        self._ttl: timedelta = config.session_ttl
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._dummy = hash_password("no-such-user", salt=_DUMMY_SALT)
        self.throttle = throttle or LoginThrottle(clock, failures=config.login_failures,
                                                  lockout=config.login_lockout)
        self._checks = asyncio.Semaphore(2)

    @property
    def has_users(self) -> bool:
        return bool(self._users)

    def check_password(self, name: str, password: str) -> Role | None:
        """The user's role when ``name``/``password`` are right, else None (same work either way)."""
        role, stored = self._users.get(name, ("read", self._dummy))
        ok = verify_password(password, stored)
        return role if ok and name in self._users else None

    async def authenticate(self, name: str, password: str, address: str | None) -> Role | None:
        """``check_password`` behind the throttle, in a worker thread. Raises :class:`LoginThrottled` while the
        name or the address is locked (the password is not even checked then)."""
        keys = _throttle_keys(name, address)
        wait = self.throttle.retry_after(keys)
        if wait is not None:
            raise LoginThrottled(wait)
        async with self._checks:
            role = await asyncio.to_thread(self.check_password, name, password)
        if role is None:
            self.throttle.failed(keys)
        else:
            self.throttle.succeeded(keys)
        return role

    async def login(self, name: str, password: str, address: str | None = None) -> Principal | None:
        """A new session for the user, or None when the credentials are wrong (see ``authenticate``)."""
        role = await self.authenticate(name, password, address)
        if role is None:
            return None
        self._expire()
        sid = secrets.token_urlsafe(32)
        principal = Principal(name=name, role=role, csrf=secrets.token_urlsafe(32), session=sid)
        self._sessions[sid] = _Session(principal, self._clock() + self._ttl)
        return principal

    def logout(self, sid: str) -> None:
        self._sessions.pop(sid, None)

    def session(self, sid: str | None) -> Principal | None:
        """The principal of a live session id, else None."""
        if not sid:
            return None
        found = self._sessions.get(sid)
        if found is None:
            return None
        if found.expires_at <= self._clock():
            self._sessions.pop(sid, None)
            return None
        return found.principal

    async def basic(self, header: str | None, address: str | None = None) -> Principal | None:
        """The principal of an ``Authorization: Basic …`` header, else None. Never carries a CSRF token."""
        if not header or header[:6].lower() != "basic ":
            return None
        try:
            name, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (ValueError, binascii.Error):
            return None
        if not sep:
            return None
        role = await self.authenticate(name, password, address)
        return None if role is None else Principal(name=name, role=role)

    def _expire(self) -> None:
        now = self._clock()
        for sid in [sid for sid, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[sid]


def _throttle_keys(name: str, address: str | None) -> list[str]:
    keys = [f"user:{name.casefold()}"]
    if address:
        keys.append(f"address:{address}")
    return keys


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token; a missing one on either side never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
