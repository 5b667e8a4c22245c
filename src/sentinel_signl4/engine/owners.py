"""Who a SIGNL4 user is in Entra ID: the config's mapping table first, then a Graph lookup, cached."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

import structlog

from sentinel_signl4.domain.incident_change import OwnerRef
from sentinel_signl4.domain.signl4_events import Signl4User
from sentinel_signl4.errors import RemoteError

__all__ = ["OwnerDirectory", "UserLookup"]

log = structlog.get_logger("sentinel_signl4.owners")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

UserLookup = Callable[[str], Awaitable[OwnerRef | None]]
"""Look a user up by e-mail / UPN (Graph ``GET /users/{upn}``); None when unknown."""


class OwnerDirectory:
    def __init__(self, owner_map: Mapping[str, str], lookup: UserLookup | None) -> None:
        self._map = {k.casefold(): v for k, v in owner_map.items()}
        self._lookup = lookup
        self._cache: dict[str, OwnerRef | None] = {}
        self._warned: set[str] = set()

    async def resolve(self, user: Signl4User | None) -> tuple[OwnerRef | None, str | None]:
        """Return the owner to assign, or None with the reason (for a comment) when it cannot be resolved."""
        if user is None or not user.mail:
            return None, "SIGNL4 did not say who it was"
        mail = user.mail.casefold()
        mapped = self._map.get(mail)
        if mapped:
            if _GUID.match(mapped):
                # The e-mail rides along for sources that assign by name (Graph's assignedTo), not by object id.
                return OwnerRef(object_id=mapped, email=user.mail), None
            return OwnerRef(upn=mapped, email=user.mail), None
        if mail in self._cache:
            cached = self._cache[mail]
            return (cached, None) if cached else (None, f"{user.mail} was not found in Entra ID")
        if self._lookup is None:
            self._warn_once(mail, "no owner_map entry and no Graph lookup configured")
            return None, f"{user.mail} has no owner_map entry"
        try:
            found = await self._lookup(user.mail)
        except RemoteError as exc:
            # Not cached: a transient Graph failure should not stick.
            self._warn_once(mail, exc.message)
            return None, f"{user.mail} could not be looked up in Entra ID"
        self._cache[mail] = found
        if found is None:
            self._warn_once(mail, "not found in Entra ID")
            return None, f"{user.mail} was not found in Entra ID"
        return found, None

    def _warn_once(self, mail: str, why: str) -> None:
        if mail not in self._warned:
            self._warned.add(mail)
            log.warning("owner_unresolved", user=mail, reason=why,
                        hint="add the user to [connectors.sync.owner_map] or grant User.Read.All for the lookup")
