"""What a connector would page now, without paging or writing anything: ``run --dry-run`` and the console preview.

It takes the connector's forward path as built for the real run and repeats its poll read-only: one list query, the
same filter, the same links (an incident already paged is left out), enrichment and rendering. The store is only
read (links, queued raise rows, maintenance windows); nothing is sent to SIGNL4 and no incident is written.
Enrichment runs its Log Analytics query like a real poll (a read in Azure).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sentinel_signl4.domain import skip_reason
from sentinel_signl4.domain.incident import Incident
from sentinel_signl4.domain.render import render_signl
from sentinel_signl4.domain.signl import SignlRequest
from sentinel_signl4.engine.forward import ForwardPath
from sentinel_signl4.engine.keys import raise_key
from sentinel_signl4.engine.pausing import covering
from sentinel_signl4.store.pauses import Pause

__all__ = ["PreviewItem", "preview"]


@dataclass(frozen=True, slots=True)
class PreviewItem:
    """One incident the connector selects now that has no Signl yet, and what would happen to it."""

    incident: Incident
    request: SignlRequest
    #: "page" (sent in this cycle), "queued" (already in the outbox), or the window's mode ("skip", "hold").
    verdict: str
    pause: Pause | None = None


async def preview(forward: ForwardPath, now: datetime, *, limit: int = 50) -> list[PreviewItem]:
    """The incidents ``forward`` would page at ``now`` (at most ``limit``), rendered; nothing is written."""
    incidents = [incident async for incident in forward.source.list_matching(forward.flt, now)]
    links = await forward.store.links_for(forward.connector, [i.resource_id for i in incidents])
    fresh: list[Incident] = []
    for incident in incidents:
        if skip_reason(incident, forward.flt, now) is not None or incident.resource_id in links:
            continue
        if forward.tag and forward.skip_already_tagged and incident.has_label(forward.tag):
            continue  # already tagged by someone else: the real poll skips it too
        fresh.append(incident)
        if len(fresh) >= limit:
            break
    enrichments = await forward.enricher.enrich(fresh, now) if (forward.enricher and fresh) else {}
    pauses = await forward.store.pauses(now, connector=forward.connector) if fresh else []
    items: list[PreviewItem] = []
    for incident in fresh:
        request = render_signl(incident, forward.render, enrichments.get(incident.resource_id))
        queued = await forward.store.get_action(raise_key(forward.connector, request.external_id)) is not None
        pause = covering(pauses, forward.connector, incident.severity.value, now)
        verdict = "queued" if queued else pause.mode if pause is not None else "page"
        items.append(PreviewItem(incident=incident, request=request, verdict=verdict, pause=pause))
    return items

