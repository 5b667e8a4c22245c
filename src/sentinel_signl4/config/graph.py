"""Settings of a connector whose incidents come from Microsoft Graph (``source = "graph"``).

``[connectors.graph]`` says what to read — Defender XDR ``incidents`` (the default; alerts expanded) or single
``alerts`` (alerts_v2) — and how much of the tenant's Graph budget the connector's process may use. Graph allows
150 security requests per minute per app per tenant; all connectors of a tenant in one process share one budget
(``clients.graph.graph_limiter``), sized by the first of them that is built — give them all the same value.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GraphSourceConfig", "SourceKind"]

SourceKind = Literal["sentinel", "graph"]


class GraphSourceConfig(BaseModel):
    """``[connectors.graph]``: only read when the connector's ``source`` is ``"graph"``."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    resource: Literal["incidents", "alerts"] = "incidents"
    # Items per page ($top). Graph's maximum for these collections is unverified; 50 is known to be served.
    page_size: int = Field(default=50, ge=1, le=50)
    # Below Graph's 150 on purpose: requests we cannot see (an operator's script with the same app) count too.
    requests_per_minute: int = Field(default=140, ge=1, le=150)
