"""Failed console sign-ins slow the next ones down: per user name and per client address.

After ``failures`` wrong passwords for one key (a user name, or the address they came from) within ``window``, that
key is locked for ``lockout``; every further failure once the lock ends doubles it, up to ``max_lockout``. While a
key is locked, a sign-in is refused before its password is checked, so a right password is refused too: the answer
must not tell a guesser that the last guess was the one. A successful sign-in clears its user name and address.

Checking a password costs scrypt work (some 50 ms of CPU), so the lock also keeps a flood of guesses from
occupying the process that pages. The table is bounded (``max_keys``): expired entries go first, then the oldest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["LoginThrottle"]


@dataclass(slots=True)
class _Entry:
    failures: int
    first_failure: datetime
    locked_until: datetime | None = None
    lockout: timedelta | None = None


class LoginThrottle:
    def __init__(self, clock: Callable[[], datetime], *, failures: int = 5,
                 window: timedelta = timedelta(minutes=15), lockout: timedelta = timedelta(minutes=1),
                 max_lockout: timedelta = timedelta(minutes=15), max_keys: int = 10_000) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self._clock = clock
        self._failures = failures
        self._window = window
        self._lockout = lockout
        self._max_lockout = max_lockout
        self._max_keys = max_keys
        self._entries: dict[str, _Entry] = {}

    def retry_after(self, keys: Iterable[str]) -> float | None:
        """Seconds until the longest lock among ``keys`` ends, or None when none of them is locked."""
        now = self._clock()
        waits = [(e.locked_until - now).total_seconds() for k in keys
                 if (e := self._entries.get(k)) is not None and e.locked_until is not None and e.locked_until > now]
        return max(waits) if waits else None

    def failed(self, keys: Iterable[str]) -> bool:
        """Count a wrong password against each key. True when that locked one of them (just now)."""
        now = self._clock()
        locked = False
        for key in keys:
            entry = self._entries.get(key)
            if entry is None or self._stale(entry, now):
                entry = _Entry(failures=0, first_failure=now)
                self._remember(key, entry)
            entry.failures += 1
            if entry.lockout is not None:
                # A failure after a lock ended: lock again, twice as long.
                entry.lockout = min(entry.lockout * 2, self._max_lockout)
            elif entry.failures >= self._failures:
                entry.lockout = self._lockout
            else:
                continue
            entry.locked_until = now + entry.lockout
            locked = True
        return locked

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)

    def _remember(self, key: str, entry: _Entry) -> None:
        self._entries.pop(key, None)
        if len(self._entries) >= self._max_keys:
            now = self._clock()
            for old in [k for k, e in self._entries.items() if self._expired(e, now)]:
                del self._entries[old]
            while len(self._entries) >= self._max_keys:
                del self._entries[next(iter(self._entries))]  # dicts keep insertion order: the oldest goes
        self._entries[key] = entry

    def _stale(self, entry: _Entry, now: datetime) -> bool:
        """Long enough without a failure that the key starts afresh."""
        if entry.locked_until is not None:
            return now - entry.locked_until > self._window
        return now - entry.first_failure > self._window

    def _expired(self, entry: _Entry, now: datetime) -> bool:
        if entry.locked_until is not None:
            return entry.locked_until + self._max_lockout <= now
        return now - entry.first_failure > self._window
