"""``[watchdog]``: the dead-man's switch, a SIGNL4 team (e.g. the platform team) paged about the connector itself."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from sentinel_signl4.config.durations import PositiveDuration
from sentinel_signl4.domain.signl import check_team_webhook_url, team_secret_of

__all__ = ["WatchdogConfig"]


class WatchdogConfig(BaseModel):
    """Who is paged, and when.

    * ``webhook_url``: the SIGNL4 webhook URL (with its team secret) of the team to page.
    * ``after``: a connector in ``error`` for this long pages the team (one Signl per outage, resolved on
      recovery).
    * ``stall_after``: the process's event loop not answering for this long pages the team.
    * ``check_interval``: how often connector health and credential expiry are checked.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    webhook_url: SecretStr
    after: PositiveDuration = timedelta(minutes=10)
    stall_after: PositiveDuration = timedelta(seconds=60)
    check_interval: PositiveDuration = timedelta(seconds=15)

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: SecretStr) -> SecretStr:
        check_team_webhook_url(value.get_secret_value(), "the paged team's")
        return value

    @property
    def team_secret(self) -> str:
        return team_secret_of(self.webhook_url.get_secret_value())
