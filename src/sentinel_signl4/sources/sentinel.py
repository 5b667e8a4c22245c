"""Microsoft Sentinel (ARM REST) as an incident source.

Every write is read-modify-write: GET the incident, decide the change on it (``domain/incident_change.py``), apply
that to its full writable property set and PUT with the etag just read (``sources/sentinel_wire.py``). A 409 means
somebody (an analyst, an automation rule) changed the incident in between: re-read, decide again and re-apply, with
jittered, bounded retries. Nothing the other writer set is lost because the change is decided on and applied to
*their* version, never to ours.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from sentinel_signl4.clients.sentinel import SentinelClient
from sentinel_signl4.domain import Incident, IncidentFilter
from sentinel_signl4.domain.incident_change import (
    IncidentChange,
    OwnerRef,
    acknowledge_change,
    close_change,
    tag_change,
)
from sentinel_signl4.domain.sync import ClassificationChoice, clip_comment
from sentinel_signl4.errors import ConflictError, PermanentError, RateLimitedError
from sentinel_signl4.sources.sentinel_wire import (
    assignee,
    changed_properties,
    incident_from_arm,
    merged_into_number,
    put_body,
)

__all__ = ["SentinelSource", "incident_name"]

Decide = Callable[[Incident], IncidentChange]

_MAX_MERGES = 5  # merges chain rarely; a longer chain is a loop or a service bug

_log = structlog.get_logger(__name__)


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
        return _parsed(self.client.list_incidents(flt, now, top=self.page_size))

    async def get(self, incident_id: str) -> Incident:
        return incident_from_arm(await self.client.get_incident(incident_name(incident_id)))

    async def _write(self, incident_id: str, decide: Decide) -> bool:
        """Decide the change on the incident as read now and PUT its full writable set with the etag read.

        ``decide`` runs again on the re-read incident after every 409. True if written; False when the change was
        empty (then nothing is sent).
        """
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(ConflictError),
            stop=stop_after_attempt(self.conflict_attempts),
            wait=wait_random_exponential(multiplier=0.1, max=self.conflict_wait_max),
            reraise=True,
        ):
            with attempt:
                incident = await self.get(incident_id)
                properties = changed_properties(incident, decide(incident))
                if properties is None:
                    return False
                if attempt.retry_state.attempt_number > 1:
                    self._take_extra_write()
                await self.client.put_incident(incident.name, put_body(incident, properties))
                return True
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
        return await self._write(incident_id, lambda incident: tag_change(incident, tag))

    async def check_access(self) -> None:
        await self.client.check_access()

    def list_modified_since(self, since: datetime) -> AsyncIterator[Incident]:
        return _parsed(self.client.list_modified_since(since, top=self.page_size))

    async def acknowledge(self, incident_id: str, owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        wanted = assignee(owner)
        return await self._write(incident_id, lambda incident: acknowledge_change(incident, wanted, tags))

    async def close(self, incident_id: str, choice: ClassificationChoice, comment: str,
                    owner: OwnerRef | None, *, tags: Sequence[str] = ()) -> bool:
        wanted = assignee(owner)
        return await self._write(incident_id, lambda incident: close_change(incident, choice, comment, wanted, tags))

    async def add_comment(self, incident_id: str, comment_id: str, message: str) -> None:
        await self.client.put_comment(incident_name(incident_id), comment_id, clip_comment(message))

    async def follow_merge(self, incident: Incident) -> Incident | None:
        """The incident Defender merged ``incident`` into, when the API version in use says which (see
        ``sentinel_wire.merged_into_number``); ``None`` with the stable 2025-09-01, which only marks the merged
        incident (Closed + ``Redirected``)."""
        current = incident
        for _ in range(_MAX_MERGES):
            number = merged_into_number(current)
            if number is None:
                return None
            item = await self.client.find_incident_by_number(number)
            found = _parse(item) if item is not None else None
            if found is None or not found.merged:
                return found
            current = found
        raise PermanentError(f"sentinel: incident {incident.number} was merged more than {_MAX_MERGES} times")


def _parse(item: Mapping[str, Any]) -> Incident | None:
    try:
        return incident_from_arm(item)
    except ValueError as exc:
        # One unidentifiable item must not block every later incident of the listing (a poison pill).
        _log.warning("sentinel.incident_unparseable", reason=str(exc), item_id=str(item.get("id", ""))[:200])
        return None


async def _parsed(items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[Incident]:
    async for item in items:
        incident = _parse(item)
        if incident is not None:
            yield incident
