"""Microsoft Sentinel's own request limits, tracked on our side so we never provoke a 429.

learn.microsoft.com, "Microsoft Sentinel REST API: request limits and throttling" documents *minimum* limits per
5 minutes: 75 ``PUT incident``, 75 ``PUT comments``, 100 incident alerts and 100 incident entities calls. Past a
limit Sentinel answers 429 with ``Retry-After``. The page counts "per subscription and endpoint" on each ARM instance;
we count per workspace (one incidents endpoint), see docs/decisions.md.

:class:`SentinelBudget` holds one :class:`SlidingWindowLimiter` per operation family. Our defaults stay a little
under the documented numbers (70, 70 and 95 for alerts and entities together), for the same reasons as SIGNL4's:
other writers (automation, a second integration) share the budget and our window is not aligned with theirs.
:func:`sentinel_budget_for` shares one budget per workspace, so connectors of one workspace draw from it together.

* Incident and comment PUTs are paced by the outbox (``engine.pacing.WritePacer``) before an attempt starts.
* Enrichment's alerts and entities calls take from their own shared budget in the client
  (:meth:`SentinelBudget.take_enrichment`): when it is spent the call is not sent and fails as rate limited, and
  the Signl goes out without that part of the evidence (enrichment is best effort within its time budget).
"""

from __future__ import annotations

from dataclasses import dataclass

from sentinel_signl4.clients.ratelimit import SlidingWindowLimiter
from sentinel_signl4.errors import BUDGET_SPENT, RateLimitedError

__all__ = ["SentinelBudget", "SentinelLimits", "reset_sentinel_budgets", "sentinel_budget_for"]


@dataclass(frozen=True, slots=True)
class SentinelLimits:
    """Our budget per ``window`` seconds; ``reverse_reserve`` incident writes are kept for reverse sync (tags never
    take them)."""

    incident_writes: int = 70
    comment_writes: int = 70
    enrichment_calls: int = 95
    window: float = 300.0
    reverse_reserve: int = 15


class SentinelBudget:
    """The tracked budgets of one workspace."""

    def __init__(self, limits: SentinelLimits) -> None:
        if limits.reverse_reserve < 0 or limits.reverse_reserve >= limits.incident_writes:
            raise ValueError("reverse_reserve must be >= 0 and smaller than incident_writes")
        self.limits = limits
        self.incidents = SlidingWindowLimiter(limits.incident_writes, limits.window)
        self.comments = SlidingWindowLimiter(limits.comment_writes, limits.window)
        self.enrichment = SlidingWindowLimiter(limits.enrichment_calls, limits.window)

    def __repr__(self) -> str:
        return f"SentinelBudget({self.limits!r})"

    def take_enrichment(self, what: str) -> None:
        """Take one alerts/entities call from the budget, or raise :class:`RateLimitedError` (nothing was sent)."""
        wait = self.enrichment.delay()
        if wait > 0:
            raise RateLimitedError(f"sentinel: {what} budget spent ({self.limits.enrichment_calls} per "
                                   f"{self.limits.window:g} s); not sent", retry_after=wait, status=None,
                                   code=BUDGET_SPENT)
        self.enrichment.take()


_registry: dict[str, SentinelBudget] = {}


def sentinel_budget_for(workspace_resource_id: str, limits: SentinelLimits) -> SentinelBudget:
    """The process-wide budget of a workspace, created on first use with ``limits`` (later callers share it;
    a different ``limits`` after a configuration reload replaces it)."""
    key = workspace_resource_id.lower()
    budget = _registry.get(key)
    if budget is None or budget.limits != limits:
        budget = _registry[key] = SentinelBudget(limits)
    return budget


def reset_sentinel_budgets() -> None:
    """Forget every workspace budget (tests)."""
    _registry.clear()
