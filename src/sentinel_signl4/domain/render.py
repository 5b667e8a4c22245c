"""Render an incident as a Signl that reads well on a phone. Pure; sizes are bounded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sentinel_signl4.domain.enums import SignlStatus
from sentinel_signl4.domain.incident import Incident
from sentinel_signl4.domain.signl import SignlRequest, external_id_for

__all__ = ["Enrichment", "RenderContext", "render_signl", "truncate"]

MAX_TITLE = 200
MAX_MESSAGE = 4000
MAX_PARAM = 500


@dataclass(frozen=True, slots=True)
class Enrichment:
    """Evidence gathered for one incident. Empty by default; ``notes`` say what could not be fetched."""

    alerts: tuple[dict[str, Any], ...] = ()
    entities: tuple[dict[str, Any], ...] = ()
    rows: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RenderContext:
    connector: str
    display_name: str = ""
    service: str = ""
    generation: int = 1


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def render_signl(incident: Incident, ctx: RenderContext, enrichment: Enrichment | None = None) -> SignlRequest:
    title = truncate(f"{incident.number} | {incident.title}", MAX_TITLE)
    params: dict[str, str] = {
        "Severity": incident.severity.value,
        "Status": incident.status.value,
    }
    if ctx.display_name:
        params["Customer"] = ctx.display_name
    params["Incident number"] = str(incident.number)
    if incident.product_names:
        params["Products"] = ", ".join(incident.product_names)
    elif incident.provider_name:
        params["Products"] = incident.provider_name
    if incident.tactics:
        params["Tactics"] = ", ".join(incident.tactics)
    params["Created (UTC)"] = incident.created.strftime("%Y-%m-%d %H:%M")
    if incident.url:
        params["Incident link"] = incident.url
    if incident.provider_url:
        params["Defender link"] = incident.provider_url
    if enrichment is not None and enrichment.notes:
        params["Note"] = "; ".join(enrichment.notes)
    return SignlRequest(
        external_id=external_id_for(ctx.connector, incident.resource_id, ctx.generation),
        status=SignlStatus.NEW,
        title=title,
        message=truncate(incident.description or incident.title, MAX_MESSAGE),
        parameters={k: truncate(v, MAX_PARAM) for k, v in params.items()},
        service=ctx.service or None,
    )
