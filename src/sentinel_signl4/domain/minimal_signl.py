"""The Signl sent when SIGNL4 rejected the rich one (HTTP 400 or 413): only what a responder needs to act. Pure.

Whatever made SIGNL4 refuse the rich Signl (a field it does not take, a body above its size limit) must not lose
the page, so this one copies nothing of the rich Signl but the fields that correlate it and a few short, checked
values. The outbox sends it with the same ExternalID (``engine/forward.py``).
"""

from __future__ import annotations

from sentinel_signl4.domain.signl import SignlRequest
from sentinel_signl4.domain.text_fit import clean_text, clip

__all__ = ["minimal_signl"]

# The minimal Signl's bounds: far below anything SIGNL4 is known to take, whatever made it reject the rich one.
_MINIMAL_TITLE = 200
_MINIMAL_LINK = 1000
_LINK_TILES = ("Azure portal", "Defender portal")


def minimal_signl(rich: SignlRequest, *, rejected_status: int, incident_number: int | None = None,
                  severity: str | None = None, link: str | None = None) -> SignlRequest:
    """The Signl to send when SIGNL4 rejected ``rich`` (HTTP 400 or 413): only what a responder needs to act.

    Same ExternalID, status, service, alerting scenario and source system as ``rich`` (so acknowledgements and
    resolves still correlate); the title, the severity, the incident number, the portal link and a line saying that
    SIGNL4 rejected the details, with the status code. Nothing else of ``rich`` is copied: any other field may be
    what SIGNL4 refused. ``severity`` and ``link`` default to the rich Signl's own tiles (rows queued by an older
    version carry only the rich request).
    """
    params = dict(rich.parameters)
    title = " ".join(clean_text(rich.title).split())
    number = incident_number if incident_number is not None else _leading_number(title)
    tiles: dict[str, str] = {}
    severity = clean_text(severity if severity is not None else params.get("Severity", ""))
    if severity:
        tiles["Severity"] = clip(severity, 50)
    if number is not None:
        tiles["Incident number"] = str(number)
    links = [link] if link else [params[name] for name in _LINK_TILES if params.get(name)]
    for url in links:
        # A clipped URL would not open: a link too long to send is left out (the incident number remains).
        if url.startswith("https://") and len(url) <= _MINIMAL_LINK:
            tiles[_link_tile(url)] = url
    if not title:
        title = f"{number} | Microsoft Sentinel incident" if number is not None else "Microsoft Sentinel incident"
    message = (f"SIGNL4 rejected the incident details (HTTP {rejected_status}), so this Signl is shortened. "
               "Open the incident in the portal for the details.")
    return SignlRequest(external_id=rich.external_id, status=rich.status, title=clip(title, _MINIMAL_TITLE),
                        message=message, parameters=tiles, service=rich.service,
                        alerting_scenario=rich.alerting_scenario, source_system=rich.source_system)


def _link_tile(url: str) -> str:
    return "Defender portal" if "security.microsoft.com" in url.split("/", 3)[2].casefold() else "Azure portal"


def _leading_number(title: str) -> int | None:
    head = title.split(" | ", 1)[0]
    return int(head) if head.isdigit() else None
