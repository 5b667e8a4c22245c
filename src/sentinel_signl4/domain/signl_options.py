"""How a connector presents incidents on a phone: the options and hard size limits a Signl is rendered with.

Built from the ``[connectors.signl]`` configuration (``config/signl_content.py``) by the composition root, and read
by :mod:`sentinel_signl4.domain.render`. Pure values; no rendering happens here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sentinel_signl4.domain.enums import Severity
from sentinel_signl4.domain.templates import CompiledTemplates

__all__ = ["DEFAULT_DEFENDER_PORTAL", "Limits", "PresentationOptions", "ServiceSource"]

DEFAULT_DEFENDER_PORTAL = "https://security.microsoft.com"


class ServiceSource(StrEnum):
    """Where ``X-S4-Service`` (the SIGNL4 category) comes from."""

    FIXED = "fixed"        # the connector's configured value (signl4.service)
    PRODUCT = "product"    # the friendly name of the incident's first product
    CUSTOMER = "customer"  # the connector's display name (MSSP: one category per customer)


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard size limits, in characters, except ``payload`` (bytes of the UTF-8 JSON body)."""

    title: int = 200
    message: int = 2000
    tile: int = 500
    entities_per_kind: int = 5
    entity_chars: int = 120
    rows: int = 3
    alerts_in_message: int = 5
    payload: int = 8000

    def __post_init__(self) -> None:
        for name in ("title", "message", "tile", "entity_chars", "payload"):
            if getattr(self, name) < 16:
                raise ValueError(f"limit {name} must be at least 16")
        for name in ("entities_per_kind", "rows", "alerts_in_message"):
            if getattr(self, name) < 0:
                raise ValueError(f"limit {name} must not be negative")


@dataclass(frozen=True, slots=True)
class PresentationOptions:
    """How a connector presents incidents. Built from ``PresentationConfig`` by the composition root."""

    product_names: Mapping[str, str] = field(default_factory=dict)
    service_from: ServiceSource = ServiceSource.FIXED
    alerting_scenarios: Mapping[Severity, str] = field(default_factory=dict)
    hidden_entity_kinds: tuple[str, ...] = ()
    row_columns: tuple[str, ...] = ()
    defender_portal: str = DEFAULT_DEFENDER_PORTAL
    tenant_id: str = ""
    limits: Limits = field(default_factory=Limits)
    templates: CompiledTemplates = field(default_factory=CompiledTemplates)
