"""Microsoft Sentinel (ARM REST) as an incident source.

Every write is read-modify-write: GET the incident, apply the change to its full writable property set, PUT with
the etag just read. A 409 means somebody (an analyst, an automation rule) changed the incident in between: re-read
and re-apply, with jittered, bounded retries. Nothing the other writer set is lost because the change is re-applied
to *their* version, never to ours.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from sentinel_signl4.clients.sentinel import SentinelClient
from sentinel_signl4.clients.sentinel_mapping import merged_into_number, with_label, writable_properties
from sentinel_signl4.domain import Incident, IncidentFilter
from sentinel_signl4.domain.sync import ClassificationChoice, apply_acknowledge, apply_close, clip_comment
from sentinel_signl4.engine.ports import OwnerRef
from sentinel_signl4.errors import ConflictError, PermanentError, RateLimitedError

__all__ = ["SentinelSource", "incident_name"]

Mutation = Callable[[Incident, dict[str, Any]], dict[str, Any] | None]

_MAX_MERGES = 5  # merges chain rarely; a longer chain is a loop or a service bug


def incident_name(incident_id: str) -> str:
    """The incident GUID (last ARM path segment) of a full resource id; a bare name is returned unchanged."""
    return incident_id.rstrip("/").rsplit("/", 1)[-1]


class SentinelSource:
    kind = "sentinel"

    def __init__(self, client: SentinelClient, *, page_size: int = 200, conflict_attempts: int = 5,
                 conflict_wait_max: float = 2.0) -> None:
        self.client = client
        self.page_size = page_size
        self.conflict_attempts = conflict_attempts
        self.conflict_wait_max = conflict_wait_max

    def list_matching(self, flt: IncidentFilter, now: datetime) -> AsyncIterator[Incident]:
        return self.client.list_incidents(flt, now, top=self.page_size)

    async def get(self, incident_id: str) -> Incident:
        return await self.client.get_incident(incident_name(incident_id))

    async def update(self, incident_id: str, mutate: Mutation) -> Incident | None:
        """Apply ``mutate`` to the current writable properties and PUT them with the etag read.

        ``mutate`` gets the incident and a fresh copy of its writable properties and returns the properties to
        PUT, or ``None`` when nothing needs to change (then nothing is written and ``None`` is returned).
        """
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(ConflictError),
            stop=stop_after_attempt(self.conflict_attempts),
            wait=wait_random_exponential(multiplier=0.1, max=self.conflict_wait_max),
            reraise=True,
        ):
            with attempt:
                incident = await self.get(incident_id)
                changed = mutate(incident, writable_properties(incident))
                if changed is None:
                    return None
                if attempt.retry_state.attempt_number > 1:
                    self._take_extra_write()
                return await self.client.put_incident(incident, changed)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _take_extra_write(self) -> None:
        """A re-apply after a 409 is one more incident PUT than the outbox admitted: take it from the workspace's
        budget, or fail as rate limited without sending (the outbox retries the row later)."""
        budget = self.client.budget
        if budget is None:
            return
        wait = budget.incidents.delay()
        if wait > 0:
            raise RateLimitedError("sentinel: incident write budget spent; the re-apply after a conflict waits",
                                   retry_after=wait, status=None, code="BudgetSpent")
        budget.incidents.take()

    async def add_tag(self, incident_id: str, tag: str) -> bool:
        updated = await self.update(incident_id, lambda _incident, props: with_label(props, tag))
        return updated is not None

    async def check_access(self) -> None:
        await self.client.check_access()

    def list_modified_since(self, since: datetime) -> AsyncIterator[Incident]:
        return self.client.list_modified_since(since, top=self.page_size)

    async def acknowledge(self, incident_id: str, owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        updated = await self.update(incident_id, lambda _i, props: _tagged(props, apply_acknowledge(
            props, owner_object_id=owner.object_id if owner else None,
            owner_upn=owner.upn if owner else None, assign_owner=owner is not None), tags))
        return updated is not None

    async def close(self, incident_id: str, choice: ClassificationChoice, comment: str,
                    owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        def closed(_incident: Incident, props: dict[str, Any]) -> dict[str, Any] | None:
            new = apply_close(props, choice=choice, comment=comment,
                              owner_object_id=owner.object_id if owner else None,
                              owner_upn=owner.upn if owner else None, assign_owner=owner is not None)
            return None if new is None else _tagged(props, new, tags)  # closed already: write nothing at all

        updated = await self.update(incident_id, closed)
        return updated is not None

    async def add_comment(self, incident_id: str, comment_id: str, message: str) -> None:
        await self.client.put_comment(incident_name(incident_id), comment_id, clip_comment(message))

    async def follow_merge(self, incident: Incident) -> Incident | None:
        """The incident Defender merged ``incident`` into, when the API version in use says which (see
        ``sentinel_mapping.merged_into_number``); ``None`` with the stable 2025-09-01, which only marks the merged
        incident (Closed + ``Redirected``)."""
        current = incident
        for _ in range(_MAX_MERGES):
            number = merged_into_number(current)
            if number is None:
                return None
            found = await self.client.find_incident_by_number(number)
            if found is None or not found.merged:
                return found
            current = found
        raise PermanentError(f"sentinel: incident {incident.number} was merged more than {_MAX_MERGES} times")


def _tagged(props: Mapping[str, Any], new: dict[str, Any] | None, tags: Sequence[str]) -> dict[str, Any] | None:
    """``new`` (or ``props`` when ``new`` is None) with ``tags`` added as labels; None when nothing changes."""
    current = dict(new) if new is not None else dict(props)
    for tag in tags:
        current = with_label(current, tag) or current
    return None if current == dict(props) else current
