"""Incident evidence as lines a responder reads on a phone: MITRE tactics, alerts, entities, Log Analytics rows and
portal links. Pure; each rule (how a tactic is spelled, how a row becomes lines, where a list is cut) is a small
function of its arguments, tested on its own. :mod:`sentinel_signl4.domain.render` places the results in a Signl.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sentinel_signl4.domain.entities import EntityGroup
from sentinel_signl4.domain.incident import Incident
from sentinel_signl4.domain.products import friendly_product
from sentinel_signl4.domain.text_fit import bounded_join, clean_text, clip

__all__ = [
    "AlertSummary",
    "alert_lines",
    "defender_link",
    "entity_tile",
    "format_cell",
    "format_row",
    "humanise_column",
    "readable_tactic",
    "readable_tactics",
    "summarise_alerts",
]


# -- MITRE tactics --------------------------------------------------------------------------------------------------

_TACTIC_NAMES = {
    "commandandcontrol": "Command and Control",
    "preattack": "Pre-Attack",
    "impairprocesscontrol": "Impair Process Control",
    "inhibitresponsefunction": "Inhibit Response Function",
}
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def readable_tactic(tactic: str) -> str:
    """``"InitialAccess"`` → ``"Initial Access"`` (Sentinel's ``AttackTactic`` values, or any CamelCase)."""
    compact = tactic.strip()
    return _TACTIC_NAMES.get(compact.casefold(), _CAMEL.sub(" ", compact))


def readable_tactics(tactics: Iterable[str]) -> list[str]:
    """Readable, de-duplicated (first seen wins), ``Unknown`` and empty values dropped.

    ``SecurityAlert.Tactics`` is a comma-separated string; such values are split first.
    """
    seen: dict[str, str] = {}
    for raw in tactics:
        for part in str(raw).split(","):
            name = readable_tactic(part)
            key = "".join(name.split()).casefold()  # "initialaccess" and "Initial Access" are one tactic
            if name and key != "unknown":
                seen.setdefault(key, name)
    return list(seen.values())


# -- alerts ---------------------------------------------------------------------------------------------------------

_SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2, "informational": 3}


@dataclass(frozen=True, slots=True)
class AlertSummary:
    """Alerts of one kind (same name and product) of an incident; ``count`` > 1 for repeated detections."""

    name: str
    severity: str
    product: str
    status: str
    time: str
    description: str
    compromised_entity: str
    tactics: tuple[str, ...]
    count: int = 1

    def as_variables(self) -> dict[str, Any]:
        return {"name": self.name, "severity": self.severity, "product": self.product, "status": self.status,
                "time": self.time, "description": self.description, "count": self.count,
                "compromised_entity": self.compromised_entity, "tactics": list(self.tactics)}


def _timestamp(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    text = clean_text(value)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M") if text else ""
    except ValueError:
        return text


def summarise_alerts(alerts: Iterable[Mapping[str, Any]], product_names: Mapping[str, str]) -> list[AlertSummary]:
    """ARM alerts (``POST …/alerts`` items) merged by (name, product), most severe first, then earliest.

    An NRT rule can attach fifty identical alerts to one incident; the phone shows one line with "×50".
    """
    merged: dict[tuple[str, str], AlertSummary] = {}
    for alert in alerts:
        props = alert.get("properties") if isinstance(alert.get("properties"), Mapping) else alert
        assert isinstance(props, Mapping)
        name = clean_text(props.get("alertDisplayName") or props.get("friendlyName") or "Alert")
        product = friendly_product(clean_text(props.get("productName")), product_names)
        key = (name.casefold(), product.casefold())
        if key in merged:
            previous = merged[key]
            merged[key] = AlertSummary(**{**_fields(previous), "count": previous.count + 1})
            continue
        tactics = props.get("tactics")
        merged[key] = AlertSummary(
            name=name, severity=clean_text(props.get("severity")), product=product,
            status=clean_text(props.get("status")), time=_timestamp(props.get("timeGenerated")),
            description=clean_text(props.get("description")),
            compromised_entity=clean_text(props.get("compromisedEntity")),
            tactics=tuple(readable_tactics(tactics if isinstance(tactics, list) else [])),
        )
    return sorted(merged.values(), key=lambda a: (_SEVERITY_RANK.get(a.severity.casefold(), 4), a.time, a.name))


def _fields(summary: AlertSummary) -> dict[str, Any]:
    return {name: getattr(summary, name) for name in AlertSummary.__slots__}


def alert_lines(summaries: Sequence[AlertSummary], limit: int) -> list[str]:
    """``• Name ×3 (High, Defender for Endpoint)`` lines for the first ``limit`` alerts, then "… and N more"."""
    lines = []
    for summary in summaries[:limit]:
        times = f" ×{summary.count}" if summary.count > 1 else ""
        detail = ", ".join(part for part in (summary.severity, summary.product) if part)
        lines.append(f"• {summary.name}{times}" + (f" ({detail})" if detail else ""))
    rest = sum(s.count for s in summaries[limit:])
    if rest:
        lines.append(f"… and {rest} more alert{'s' if rest != 1 else ''}")
    return lines


# -- entities -------------------------------------------------------------------------------------------------------

def entity_tile(group: EntityGroup, max_items: int, max_chars: int, max_total: int = 500) -> str:
    """One value per line (each clipped to ``max_chars``), at most ``max_items`` and ``max_total`` characters,
    then "… and 12 more hosts"."""
    values = [clip(clean_text(value), max_chars) for value in group.values]
    return bounded_join(values, separator="\n", limit=max_total, noun=group.info.noun, max_items=max_items)


# -- Log Analytics rows ---------------------------------------------------------------------------------------------

_ISO_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_COLUMN_WORDS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def humanise_column(name: str) -> str:
    """``"CompromisedEntity"`` → ``"Compromised entity"``, ``"TimeGenerated"`` → ``"Time generated"``;
    acronyms stay (``"IPAddress"`` → ``"IP address"``)."""
    words = _COLUMN_WORDS.sub(" ", name.replace("_", " ")).split()
    if not words:
        return name
    out = [words[0]] + [w if w.isupper() and len(w) > 1 else w.lower() for w in words[1:]]
    return " ".join(out)


def format_cell(value: object) -> str:
    """A Log Analytics cell as short text: datetimes to the minute (UTC), dynamic values as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = clean_text(value)
    if _ISO_DATETIME.fullmatch(text):
        # Log Analytics sends datetimes as ISO strings with 7 fractional digits; seconds are precise enough.
        return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    return text


def format_row(row: Mapping[str, Any], columns: Sequence[str], max_chars: int) -> str:
    """``Column: value`` lines (empty cells skipped), columns in ``columns`` order (all, if empty)."""
    names = list(columns) or list(row)
    lines = []
    for name in names:
        if name not in row:
            continue
        cell = format_cell(row[name])
        if cell:
            lines.append(f"{humanise_column(name)}: {clip(cell, max_chars)}")
    return "\n".join(lines)


# -- links ----------------------------------------------------------------------------------------------------------

_XDR_PROVIDERS = frozenset({"microsoft xdr", "microsoft 365 defender", "microsoft defender xdr"})


def defender_link(incident: Incident, portal: str, tenant_id: str) -> str:
    """The incident in the Defender portal: the provider's own URL when Sentinel has one, else built from the
    Defender incident id of an XDR incident. ``""`` for a Sentinel-only incident (it has no Defender id)."""
    if incident.provider_url:
        return incident.provider_url
    props = incident.raw.get("properties") if isinstance(incident.raw.get("properties"), Mapping) else {}
    assert isinstance(props, Mapping)
    provider_id = str(props.get("providerIncidentId") or "").strip()
    if provider_id.isdigit() and incident.provider_name.casefold() in _XDR_PROVIDERS:
        suffix = f"?tid={tenant_id}" if tenant_id else ""
        return f"{portal.rstrip('/')}/incidents/{provider_id}{suffix}"
    return ""
