"""Settings of enrichment (what evidence to fetch) and presentation (how a Signl looks), per connector.

Both are validated when the configuration is loaded: the KQL template's placeholders and column names, the
template strings (compiled and trial-rendered in the sandbox), the limits. An error names its key, e.g.
``connectors[0] (contoso).presentation.templates.parameters: Runbook: template does not compile…``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sentinel_signl4.config.durations import PositiveDuration, within
from sentinel_signl4.domain.entities import ENTITY_KINDS
from sentinel_signl4.domain.enums import Severity
from sentinel_signl4.domain.signl_options import (
    DEFAULT_DEFENDER_PORTAL,
    Limits,
    PresentationOptions,
    ServiceSource,
)
from sentinel_signl4.domain.templates import CompiledTemplates, TemplateProblem, compile_templates

__all__ = [
    "DEFAULT_COLUMNS",
    "DEFAULT_QUERY",
    "QUERY_PLACEHOLDERS",
    "RESERVED_PARAMETER_NAMES",
    "EnrichmentConfig",
    "LimitsConfig",
    "PresentationConfig",
    "TemplatesConfig",
]

#: The related SecurityAlert rows of every alert raised in one poll, newest first: one query per poll batch.
#: ``timespan`` (the API parameter) bounds the scan; ``arg_max`` keeps the latest version of each alert (every
#: status change appends a row).
DEFAULT_QUERY = """SecurityAlert
| where SystemAlertId in ({system_alert_ids})
| summarize arg_max(TimeGenerated, *) by SystemAlertId
| project SystemAlertId, {columns}
| order by TimeGenerated desc
| take {max_rows}"""

DEFAULT_COLUMNS = ("TimeGenerated", "AlertName", "AlertSeverity", "ProductName", "CompromisedEntity", "Techniques")

#: What the KQL template may contain; values are quoted KQL string literals, identifiers or a number.
QUERY_PLACEHOLDERS = ("system_alert_ids", "incident_names", "columns", "max_rows")

#: Parameter names SIGNL4 reads as the title/text or as control parameters (signl4-api.md §1.3–1.4).
RESERVED_PARAMETER_NAMES = frozenset(
    name.casefold() for name in (
        "Title", "Subject", "Job", "Task", "Case", "Incident",
        "Text", "Message", "MessageText", "Description", "Body", "Content",
    )
)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class EnrichmentConfig(_Strict):
    """What evidence to gather for the incidents of one poll. Effective only when ``azure.workspace_id`` is set."""

    enabled: bool = True
    alerts: bool = True
    entities: bool = True
    query: str = DEFAULT_QUERY
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    timespan: Annotated[PositiveDuration, within(timedelta(minutes=1), timedelta(days=90))] = timedelta(days=2)
    max_rows: int = Field(default=1000, ge=1, le=10_000)
    budget: Annotated[PositiveDuration, within(timedelta(milliseconds=100), timedelta(minutes=5))] = timedelta(
        seconds=10)
    concurrency: int = Field(default=4, ge=1, le=16)

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        used = set(_PLACEHOLDER.findall(value))
        unknown = sorted(used - set(QUERY_PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}; known: "
                             + ", ".join(f"{{{p}}}" for p in QUERY_PLACEHOLDERS))
        if not used & {"system_alert_ids", "incident_names"}:
            raise ValueError("the query must select this poll's alerts or incidents with {system_alert_ids} or "
                             "{incident_names}; otherwise it would return unrelated rows")
        return value

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [column for column in value if not _COLUMN.match(column)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a column name (letters, digits and '_')")
        if not value:
            raise ValueError("must list at least one column")
        return tuple(dict.fromkeys(value))


class LimitsConfig(_Strict):
    """Hard size limits of a Signl (characters, except ``payload_bytes``)."""

    title: int = Field(default=200, ge=20, le=1000)
    message: int = Field(default=2000, ge=200, le=20_000)
    tile: int = Field(default=500, ge=50, le=5000)
    entities_per_kind: int = Field(default=5, ge=1, le=100)
    entity_chars: int = Field(default=120, ge=20, le=1000)
    rows: int = Field(default=3, ge=0, le=50)
    alerts_in_message: int = Field(default=5, ge=0, le=100)
    payload_bytes: int = Field(default=8000, ge=1000, le=100_000)

    def to_limits(self) -> Limits:
        return Limits(title=self.title, message=self.message, tile=self.tile,
                      entities_per_kind=self.entities_per_kind, entity_chars=self.entity_chars, rows=self.rows,
                      alerts_in_message=self.alerts_in_message, payload=self.payload_bytes)


class TemplatesConfig(_Strict):
    """Optional Jinja2 templates (sandboxed); empty means the default rendering."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    title: str = ""
    message: str = ""
    parameters: dict[str, str] = Field(default_factory=dict)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        _check(lambda: compile_templates(title=value))
        return value

    @field_validator("message")
    @classmethod
    def _message(cls, value: str) -> str:
        _check(lambda: compile_templates(message=value))
        return value

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            folded = name.strip().casefold()
            if folded in RESERVED_PARAMETER_NAMES or folded.startswith("x-s4-"):
                raise ValueError(f"parameter name {name!r} is reserved by SIGNL4 (title, text and X-S4-* control "
                                 "parameters); choose another name")
            if "." in name:
                raise ValueError(f"parameter name {name!r} must not contain '.' (SIGNL4 reads dots as nesting)")
        _check(lambda: compile_templates(parameters=value))
        return value

    def compile(self) -> CompiledTemplates:
        return compile_templates(title=self.title, message=self.message, parameters=self.parameters)


def _check(build: Callable[[], object]) -> None:
    """Re-raise a template problem as the ``ValueError`` pydantic reports under the field's key."""
    try:
        build()
    except TemplateProblem as exc:
        name = exc.key.removeprefix("parameters.") if exc.key.startswith("parameters.") else ""
        raise ValueError(f"{name}: {exc.reason}" if name else exc.reason) from None


_KNOWN_KINDS = {info.kind.casefold(): info.kind for info in ENTITY_KINDS}


class PresentationConfig(_Strict):
    """How incidents look on the phone."""

    product_names: dict[str, str] = Field(default_factory=dict)
    service_from: ServiceSource = ServiceSource.FIXED
    alerting_scenario: dict[Severity, Literal["single_ack", "multi_ack", "emergency"]] = Field(default_factory=dict)
    hide_entity_kinds: tuple[str, ...] = ()
    defender_portal: str = DEFAULT_DEFENDER_PORTAL
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    templates: TemplatesConfig = Field(default_factory=TemplatesConfig)

    @field_validator("hide_entity_kinds")
    @classmethod
    def _kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        kinds = []
        for kind in value:
            known = _KNOWN_KINDS.get(kind.strip().casefold())
            if known is None:
                raise ValueError(f"unknown entity kind {kind!r}; known: {', '.join(_KNOWN_KINDS.values())}")
            kinds.append(known)
        return tuple(dict.fromkeys(kinds))

    @field_validator("defender_portal")
    @classmethod
    def _https(cls, value: str) -> str:
        if not re.match(r"^https://[^\s/]+", value):
            raise ValueError(f"must be an https:// URL, got {value!r}")
        return value.rstrip("/")

    def to_options(self, *, tenant_id: str = "", row_columns: tuple[str, ...] = ()) -> PresentationOptions:
        """The domain's view of these settings (templates compiled; they were validated at load)."""
        return PresentationOptions(
            product_names=dict(self.product_names), service_from=self.service_from,
            alerting_scenarios=dict(self.alerting_scenario), hidden_entity_kinds=self.hide_entity_kinds,
            row_columns=row_columns, defender_portal=self.defender_portal, tenant_id=tenant_id,
            limits=self.limits.to_limits(), templates=self.templates.compile(),
        )
