"""``check`` for SIGNL4: which calls the configured modes use answer, and which annotation path polling will read.

Nothing here pages anyone: the webhook is proved with a resolve event for a random ExternalID (discarded by SIGNL4),
the REST API with reads only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sentinel_signl4.clients.signl4_reads import ANNOTATION_PATHS, AnnotationsPath, annotation_url_path
from sentinel_signl4.domain.enums import SignlStatus
from sentinel_signl4.domain.signl import SignlRequest

if TYPE_CHECKING:
    from sentinel_signl4.clients.signl4 import Signl4Client

__all__ = ["Signl4AccessReport", "Signl4Probe", "probe_access"]


@dataclass(frozen=True, slots=True)
class Signl4Probe:
    """One REST call :meth:`Signl4Client.check_access` tried: ``answered`` False means it is not usable."""

    call: str
    answered: bool
    detail: str

    def line(self) -> str:
        return f"{self.call}: {'OK' if self.answered else 'NO ANSWER'} ({self.detail})"


@dataclass(frozen=True, slots=True)
class Signl4AccessReport:
    """What :meth:`Signl4Client.check_access` proved.

    ``probe_event_id`` is the id SIGNL4 gave the harmless probe event; ``team_members`` is the number of users the
    API key can see, or ``None`` when no API key is configured. ``probes`` lists every call tried, in order;
    ``problems`` what keeps a configured mode from working (empty when everything it needs answered).
    """

    probe_event_id: str
    team_members: int | None
    probes: tuple[Signl4Probe, ...] = ()
    problems: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        return [probe.line() for probe in self.probes]


async def probe_access(client: Signl4Client, *, annotations: bool = False) -> Signl4AccessReport:
    """Prove the team secret and every REST call the configured modes use, without paging anyone.

    The webhook (or ``/v2/events``) is probed with an ``X-S4-Status: resolved`` event for a fresh random
    ExternalID. SIGNL4 only resolves alerts that were *created* with that ExternalID, so the event matches nothing
    and is discarded, while a wrong secret is answered 404 code 3004. Limits: the probe counts against the event
    rate limit and shows up in SIGNL4's event history as a discarded event; and SIGNL4's exact answer to a
    resolve for an unknown ExternalID is not documented (a 201 with an eventId is what we expect and accept).

    With an API key: ``GET /v2/users``; the alert search, once without a filter and once for a random ExternalID
    (an answer with alerts means the server ignores that filter); and with ``annotations`` (polling mode) both
    annotation paths, on an alert the search returned, setting ``client.annotations_path`` to the one that will be
    used. A failing send, users or search call raises; the annotation paths are reported in ``probes``, and
    ``problems`` says when neither answers.
    """
    probe = SignlRequest(external_id=f"sentinel-signl4-check-{uuid.uuid4()}", status=SignlStatus.RESOLVED)
    event_id = await client.send_event(probe)
    sent_via = "POST /v2/events/{team}" if client.send_via == "events_api" else "POST /webhook/{team-secret}"
    probes = [Signl4Probe(sent_via, True, f"probe event {event_id} accepted")]
    if not client.has_api:
        return Signl4AccessReport(probe_event_id=event_id, team_members=None, probes=tuple(probes))
    members = len(await client.list_users())
    probes.append(Signl4Probe("GET /v2/users", True, f"{members} team member(s) visible to the API key"))
    sample = await client.search_page({}, 1, None)
    sample_alerts = [a for a in (sample or {}).get("results") or [] if isinstance(a, dict)]
    probes.append(Signl4Probe("POST /v2/alerts/paged", True, "search answers" if sample_alerts
                              else "search answers; no alert visible to the API user yet"))
    probes.append(await _probe_external_id_filter(client, bool(sample_alerts)))
    problems: list[str] = []
    if annotations:
        alert_id = str(sample_alerts[0].get("id") or "") if sample_alerts else ""
        problems += await _probe_annotation_paths(client, alert_id, probes)
    return Signl4AccessReport(probe_event_id=event_id, team_members=members, probes=tuple(probes),
                              problems=tuple(problems))


async def _probe_external_id_filter(client: Signl4Client, any_alert: bool) -> Signl4Probe:
    call = "POST /v2/alerts/paged (externalId filter)"
    page = await client.search_page({"externalId": f"sentinel-signl4-check-{uuid.uuid4()}"}, 1, None)
    if page is not None and any(isinstance(a, dict) for a in page.get("results") or []):
        client.search_filter_ignored = True
        return Signl4Probe(call, True, "server ignores externalId filter; results are filtered client-side")
    if not any_alert:
        return Signl4Probe(call, True, "cannot tell whether the server applies the filter (no alert visible); "
                                       "results are filtered client-side either way")
    client.search_filter_ignored = False
    return Signl4Probe(call, True, "filter applied by the server; results are checked client-side too")


async def _probe_annotation_paths(client: Signl4Client, alert_id: str, probes: list[Signl4Probe]) -> list[str]:
    """Try both annotation paths on ``alert_id``; the first that answers (v1 before v2) becomes the one used."""
    if not alert_id:
        probes.append(Signl4Probe("GET /alerts/{id}/annotations | /v2/alerts/{id}/timeline", True,
                                  "not probed: no alert visible yet; polling tries v1 first, then the v2 "
                                  "timeline, and remembers which answers"))
        return []
    answered: list[AnnotationsPath] = []
    for path in ANNOTATION_PATHS:
        misses: list[str] = []
        notes = await client.annotations_on(path, alert_id, misses)
        call = "GET " + annotation_url_path(path, "{id}") + (" (v1)" if path == "v1" else " (v2)")
        if notes is None:
            probes.append(Signl4Probe(call, False, misses[0].split(": ", 1)[1]))
        else:
            answered.append(path)
            probes.append(Signl4Probe(call, True, f"{len(notes)} annotation(s) on alert {alert_id}"))
    if not answered:
        return ["neither annotation path answers: polling mode cannot sync SIGNL4 annotations "
                "(acknowledgements and closes still sync)"]
    client.annotations_path = answered[0]
    probes.append(Signl4Probe("annotations", True, f"polling will read {annotation_url_path(answered[0], '{id}')}"))
    return []
