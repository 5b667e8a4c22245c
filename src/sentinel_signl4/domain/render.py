"""Render an incident as a Signl that reads well on a phone. Pure; sizes are bounded.

The title stays ``"<incidentNumber> | <title>"``. The message carries the description and the incident's alerts;
the parameters (SIGNL4 shows each as a tile) carry severity, status, customer, products, MITRE tactics, the
entities grouped by kind, the top Log Analytics rows and links to both portals. Users may replace the title and
message and add or replace tiles with sandboxed templates (:mod:`sentinel_signl4.domain.templates`).

Limits are hard: each field has its own (:class:`~sentinel_signl4.domain.signl_options.Limits`), and the whole
JSON body must fit ``limits.payload``. When it does not, :func:`render_signl` gives up detail in a fixed order —
fewer Log Analytics rows, fewer entities per kind, fewer alert lines, a shorter message, then whole tiles of
least value — so the same incident always renders the same way, and what was cut is said ("… and 12 more
hosts").
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sentinel_signl4.domain.entities import EntityGroup, entities_from_security_alert, group_entities
from sentinel_signl4.domain.enums import SignlStatus
from sentinel_signl4.domain.evidence import (
    AlertSummary,
    alert_lines,
    defender_link,
    entity_tile,
    format_row,
    readable_tactics,
    summarise_alerts,
)
from sentinel_signl4.domain.incident import Incident
from sentinel_signl4.domain.products import friendly_product, friendly_products
from sentinel_signl4.domain.signl import SignlRequest, external_id_for
from sentinel_signl4.domain.signl_options import Limits, PresentationOptions, ServiceSource
from sentinel_signl4.domain.templates import TemplateProblem, render_template
from sentinel_signl4.domain.text_fit import bounded_join, clean_text, clip

__all__ = [
    "CORE_TILES",
    "Enrichment",
    "RenderContext",
    "payload_size",
    "render_signl",
    "template_variables",
]

#: Tiles that survive any payload squeeze: what the responder must see to decide, and where to act.
CORE_TILES = ("Severity", "Status", "Incident number", "Azure portal", "Defender portal", "Note")

# Least valuable first: what goes when the payload budget is still exceeded after every list was shortened.
_DROP_FIRST = ("Created (UTC)", "Tactics", "Products", "Customer")

# Columns that correlate rows with incidents, not evidence a responder reads.
_HIDDEN_COLUMNS = frozenset({"SystemAlertId", "IncidentName", "Entities", "TenantId", "_ResourceId"})
_PRODUCT_COLUMNS = frozenset({"ProductName", "ProviderName"})


@dataclass(frozen=True, slots=True)
class Enrichment:
    """Evidence gathered for one incident. Empty by default; ``notes`` say what could not be fetched.

    ``alerts`` are ``POST …/alerts`` items, ``entities`` ``POST …/entities`` items (ARM shapes); ``rows`` are Log
    Analytics rows as ``{column: value}`` in the query's order.
    """

    alerts: tuple[dict[str, Any], ...] = ()
    entities: tuple[dict[str, Any], ...] = ()
    rows: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RenderContext:
    """Per-connector rendering settings. ``service`` is the fixed ``X-S4-Service`` value (``signl4.service``)."""

    connector: str
    display_name: str = ""
    service: str = ""
    generation: int = 1
    presentation: PresentationOptions = field(default_factory=PresentationOptions)


# -- facts: everything the renderings are made of, computed once ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Facts:
    title: str
    description: str
    products: tuple[str, ...]
    tactics: tuple[str, ...]
    groups: tuple[EntityGroup, ...]
    alerts: tuple[AlertSummary, ...]
    rows: tuple[Mapping[str, Any], ...]
    columns: tuple[str, ...]
    azure_link: str
    defender_link: str
    customer: str


def _facts(incident: Incident, ctx: RenderContext, enrichment: Enrichment) -> _Facts:
    opts = ctx.presentation
    names = opts.product_names
    alerts = summarise_alerts(enrichment.alerts, names)
    # The incident's own product list, plus what its alerts say (the list lags when alerts are added later).
    raw_products = [*incident.product_names, *(alert.product for alert in alerts)]
    if not raw_products and incident.provider_name:
        raw_products.append(incident.provider_name)
    tactics = readable_tactics([*incident.tactics, *(t for a in alerts for t in a.tactics)])
    # An "Entities" column (SecurityAlert's JSON array) feeds the entity tiles instead of showing as a blob.
    row_entities = [e for row in enrichment.rows if isinstance(row.get("Entities"), str)
                    for e in entities_from_security_alert(row["Entities"])]
    groups = group_entities([*enrichment.entities, *row_entities], hidden_kinds=opts.hidden_entity_kinds)
    columns = opts.row_columns or tuple(dict.fromkeys(k for row in enrichment.rows for k in row))
    return _Facts(
        title=" ".join(clean_text(incident.title).split()) or "(untitled incident)",
        description=clean_text(incident.description),
        products=tuple(friendly_products(raw_products, names)),
        tactics=tuple(tactics),
        groups=tuple(groups),
        alerts=tuple(alerts),
        rows=tuple(enrichment.rows),
        columns=tuple(c for c in columns if c not in _HIDDEN_COLUMNS),
        azure_link=incident.url,
        defender_link=defender_link(incident, opts.defender_portal, opts.tenant_id),
        customer=clean_text(ctx.display_name),
    )


def template_variables(incident: Incident, ctx: RenderContext, enrichment: Enrichment | None = None,
                       ) -> dict[str, Any]:
    """The variables user templates see: plain dicts, lists and strings only (see ``docs/enrichment.md``)."""
    enrichment = enrichment or Enrichment()
    facts = _facts(incident, ctx, enrichment)
    return _variables(incident, ctx, facts, enrichment.notes)


def _variables(incident: Incident, ctx: RenderContext, facts: _Facts, notes: Sequence[str]) -> dict[str, Any]:
    props = incident.raw.get("properties") if isinstance(incident.raw.get("properties"), Mapping) else {}
    assert isinstance(props, Mapping)
    limits = ctx.presentation.limits
    return {
        "connector": ctx.connector,
        "customer": facts.customer,
        "incident": {
            "id": incident.resource_id, "name": incident.name, "number": incident.number, "title": facts.title,
            "severity": incident.severity.value, "status": incident.status.value,
            "description": facts.description, "created": incident.created.isoformat(),
            "created_utc": incident.created.strftime("%Y-%m-%d %H:%M"), "provider": incident.provider_name,
            "provider_incident_id": str(props.get("providerIncidentId") or ""), "labels": list(incident.labels),
            "owner": incident.owner.name or incident.owner.upn or incident.owner.email or "",
            "alerts_count": incident.alerts_count, "url": incident.url,
        },
        "products": list(facts.products),
        "tactics": list(facts.tactics),
        "entities": {group.label: list(group.values) for group in facts.groups},
        "entity_groups": [{"kind": g.kind, "label": g.label, "values": list(g.values)} for g in facts.groups],
        "alerts": [alert.as_variables() for alert in facts.alerts],
        "rows": [{k: v for k, v in row.items()} for row in facts.rows],
        "links": {"azure": facts.azure_link, "defender": facts.defender_link},
        "notes": list(notes),
        "default": {"title": _default_title(incident, facts, limits),
                    "message": _default_message(facts, limits.message, limits.alerts_in_message)},
    }


# -- the default rendering --------------------------------------------------------------------------------------------

def _default_title(incident: Incident, facts: _Facts, limits: Limits) -> str:
    return clip(f"{incident.number} | {facts.title}", limits.title)


def _default_message(facts: _Facts, limit: int, alert_limit: int) -> str:
    lines = alert_lines(facts.alerts, alert_limit) if alert_limit > 0 else []
    if lines:
        total = sum(a.count for a in facts.alerts)
        tail = f"Alerts ({total}):\n" + "\n".join(lines)
        head = clip(facts.description, max(16, limit - len(tail) - 2)) if facts.description else ""
        return clip(f"{head}\n\n{tail}" if head else tail, limit)
    return clip(facts.description or facts.title, limit)


@dataclass(frozen=True, slots=True)
class _Knobs:
    """How much detail one rendering attempt keeps; :func:`_squeeze` yields ever smaller ones."""

    rows: int
    per_kind: int
    alerts: int
    message: int
    tile: int
    dropped: frozenset[str] = frozenset()


def _squeeze(limits: Limits, droppable: Sequence[str]) -> Iterator[_Knobs]:
    knobs = _Knobs(limits.rows, limits.entities_per_kind, limits.alerts_in_message, limits.message, limits.tile)
    yield knobs
    while knobs.rows > 0:
        knobs = replace(knobs, rows=knobs.rows - 1)
        yield knobs
    while knobs.per_kind > 1:
        knobs = replace(knobs, per_kind=knobs.per_kind // 2)
        yield knobs
    while knobs.alerts > 1:
        knobs = replace(knobs, alerts=knobs.alerts // 2)
        yield knobs
    while knobs.message > 200:
        knobs = replace(knobs, message=max(200, knobs.message // 2))
        yield knobs
    for name in droppable:
        knobs = replace(knobs, dropped=knobs.dropped | {name})
        yield knobs
    for tile in (200, 100, 50):
        if tile < knobs.tile:
            knobs = replace(knobs, tile=tile)
            yield knobs
    yield replace(knobs, message=80, alerts=0)


def _default_tiles(incident: Incident, facts: _Facts, knobs: _Knobs, limits: Limits,
                   product_names: Mapping[str, str]) -> dict[str, str]:
    tiles: dict[str, str] = {"Severity": incident.severity.value, "Status": incident.status.value}
    if facts.customer:
        tiles["Customer"] = facts.customer
    tiles["Incident number"] = str(incident.number)
    if facts.products:
        tiles["Products"] = bounded_join(facts.products, separator=", ", limit=knobs.tile, noun=_products_noun)
    if facts.tactics:
        tiles["Tactics"] = bounded_join(facts.tactics, separator=", ", limit=knobs.tile, noun=_tactics_noun)
    tiles["Created (UTC)"] = incident.created.strftime("%Y-%m-%d %H:%M")
    for group in facts.groups:
        tiles[group.label] = entity_tile(group, knobs.per_kind, limits.entity_chars, knobs.tile)
    shown = facts.rows[: knobs.rows]
    for index, row in enumerate(shown, start=1):
        display = {k: (friendly_product(str(v), product_names) if k in _PRODUCT_COLUMNS and v else v)
                   for k, v in row.items()}
        text = format_row(display, facts.columns, limits.entity_chars)
        rest = len(facts.rows) - len(shown)
        if index == len(shown) and rest:
            # The count of rows left out must survive the tile limit: clip the row, not the count.
            tail = f"… and {rest} more row{'s' if rest != 1 else ''}"
            text = f"{clip(text, knobs.tile - len(tail) - 1)}\n{tail}" if text else tail
        if text:
            tiles[f"Evidence {index}"] = text
    if facts.azure_link:
        tiles["Azure portal"] = facts.azure_link
    if facts.defender_link:
        tiles["Defender portal"] = facts.defender_link
    return tiles


def _products_noun(count: int) -> str:
    return "product" if count == 1 else "products"


def _tactics_noun(count: int) -> str:
    return "tactic" if count == 1 else "tactics"


def payload_size(request: SignlRequest) -> int:
    """Bytes of the JSON body as sent (UTF-8, compact separators, like httpx's ``json=``)."""
    body = json.dumps(request.to_payload(), ensure_ascii=False, separators=(",", ":"))
    return len(body.encode("utf-8"))


def _service(ctx: RenderContext, facts: _Facts) -> str | None:
    source = ctx.presentation.service_from
    if source is ServiceSource.PRODUCT and facts.products:
        return clip(facts.products[0], 100)
    if source is ServiceSource.CUSTOMER:
        return clip(facts.customer or ctx.connector, 100)
    return ctx.service or None


def render_signl(incident: Incident, ctx: RenderContext, enrichment: Enrichment | None = None) -> SignlRequest:
    """The Signl for ``incident``: bounded, deterministic, never failing on odd data or a broken template."""
    enrichment = enrichment or Enrichment()
    opts = ctx.presentation
    limits = opts.limits
    facts = _facts(incident, ctx, enrichment)
    notes = [clean_text(note) for note in enrichment.notes if clean_text(note)]
    title = _default_title(incident, facts, limits)
    custom_message: str | None = None
    custom_tiles: dict[str, str] = {}
    templates = opts.templates
    if not templates.empty:
        variables = _variables(incident, ctx, facts, notes)
        failed: list[str] = []
        if templates.title is not None:
            rendered = _try_render(templates.title, variables, "title", failed)
            title = clip(clean_text(rendered), limits.title) if rendered else title
        if templates.message is not None:
            custom_message = _try_render(templates.message, variables, "message", failed)
        for name, template in templates.parameters:
            value = _try_render(template, variables, f"parameters.{name}", failed)
            custom_tiles[name] = clean_text(value) if value is not None else ""
        if failed:
            notes.append("template failed: " + ", ".join(failed))
    note = "; ".join(notes)
    droppable = [*_DROP_FIRST, *(group.label for group in reversed(facts.groups)),
                 *(name for name in custom_tiles if name not in CORE_TILES)]
    request = SignlRequest(external_id=external_id_for(ctx.connector, incident.resource_id, ctx.generation))
    for knobs in _squeeze(limits, droppable):
        if custom_message:
            message = clip(clean_text(custom_message), knobs.message)
        else:
            message = _default_message(facts, knobs.message, knobs.alerts)
        tiles = _default_tiles(incident, facts, knobs, limits, opts.product_names)
        for name, value in custom_tiles.items():
            if value:
                tiles[name] = value
            else:
                tiles.pop(name, None)  # a template that renders empty removes the tile
        if note:
            tiles["Note"] = note
        params = {name: clip(value, knobs.tile) for name, value in tiles.items() if name not in knobs.dropped}
        request = SignlRequest(
            external_id=request.external_id, status=SignlStatus.NEW, title=title, message=message,
            parameters=params, service=_service(ctx, facts),
            alerting_scenario=opts.alerting_scenarios.get(incident.severity),
        )
        if payload_size(request) <= limits.payload:
            return request
    return request  # the smallest rendering: only a tiny budget (below what config allows) gets here


def _try_render(template: Any, variables: Mapping[str, Any], key: str, failed: list[str]) -> str | None:
    try:
        return render_template(template, variables)
    except TemplateProblem:
        failed.append(key)
        return None
