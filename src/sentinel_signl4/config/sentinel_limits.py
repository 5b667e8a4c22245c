"""``[connectors.azure.limits]``: our budget under Microsoft Sentinel's per-workspace request limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sentinel_signl4.config.durations import PositiveDuration, within

__all__ = ["SentinelLimitsConfig"]


class SentinelLimitsConfig(BaseModel):
    """Writes and enrichment calls per ``window`` for one workspace (shared by the connectors of the workspace).

    Sentinel documents minimums of 75 incident PUTs, 75 comment PUTs and 100 alerts and 100 entities calls per
    5 minutes; the defaults stay a little under them. ``reverse_reserve`` incident writes of every window are kept
    for acknowledgements and closes: tags never spend them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_writes: int = Field(default=70, ge=1, le=10_000)
    comment_writes: int = Field(default=70, ge=1, le=10_000)
    enrichment_calls: int = Field(default=95, ge=1, le=10_000)
    reverse_reserve: int = Field(default=15, ge=0)
    window: Annotated[PositiveDuration, within(timedelta(seconds=1), timedelta(hours=1))] = timedelta(minutes=5)

    @model_validator(mode="after")
    def _reserve_below_limit(self) -> SentinelLimitsConfig:
        if self.reverse_reserve >= self.incident_writes:
            raise ValueError("reverse_reserve must be smaller than incident_writes (tags need at least one write "
                             "per window)")
        return self
