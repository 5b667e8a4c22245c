"""User templates for the Signl's title, message and parameters: Jinja2 in a sandbox, checked at config load.

Templates are written by the operator, but what they render is attacker-influenced text (incident titles,
entity names, command lines). The immutable sandbox means a template can only read the plain dicts, lists and
strings in :func:`template_variables` — no attribute walk to Python internals, no mutation — and undefined names
are errors (``StrictUndefined``), so a typo is reported instead of rendering as an empty tile.

:func:`compile_templates` parses every template *and* renders it against :data:`SAMPLE_VARIABLES`, a realistic
incident, so both syntax errors and references to variables that do not exist surface when the configuration is
loaded, each naming its key (``title``, ``message``, ``parameters.Runbook``) — not at 3 a.m. when a page is due.
At render time a failing template (e.g. ``rows[0]`` on an incident without rows) falls back to the default
rendering of that field, with a note; a page is never lost to a template.

The sandbox does not bound CPU time (Jinja's ``range`` is capped at 100 000 items, loops are not): templates are
configuration, reviewed like code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "SAMPLE_VARIABLES",
    "CompiledTemplates",
    "TemplateProblem",
    "compile_templates",
    "render_template",
]


class TemplateProblem(ValueError):
    """A template that does not compile or does not render; ``key`` names it (``parameters.Runbook``)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,  # plain text for a phone, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


_ENV = _environment()


@dataclass(frozen=True, slots=True)
class CompiledTemplates:
    """Compiled user templates; ``None`` / absent means "use the default rendering"."""

    title: Template | None = None
    message: Template | None = None
    parameters: tuple[tuple[str, Template], ...] = ()

    @property
    def empty(self) -> bool:
        return self.title is None and self.message is None and not self.parameters


def _compile(key: str, source: str) -> Template:
    try:
        template = _ENV.from_string(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateProblem(key, f"template does not compile{where}: {exc.message or exc}") from None
    try:
        template.render(SAMPLE_VARIABLES)
    except TemplateError as exc:
        raise TemplateProblem(key, f"template fails on a sample incident: {exc.message or exc}") from None
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise TemplateProblem(key, f"template fails on a sample incident: {type(exc).__name__}: {exc}") from None
    return template


def compile_templates(
    *, title: str = "", message: str = "", parameters: Mapping[str, str] | None = None
) -> CompiledTemplates:
    """Compile and trial-render every non-empty template; raise :class:`TemplateProblem` for the first bad one."""
    compiled_title = _compile("title", title) if title.strip() else None
    compiled_message = _compile("message", message) if message.strip() else None
    compiled_params: list[tuple[str, Template]] = []
    for name, source in (parameters or {}).items():
        if not name.strip():
            raise TemplateProblem("parameters", "a parameter name must not be empty")
        compiled_params.append((name, _compile(f"parameters.{name}", source)))
    return CompiledTemplates(compiled_title, compiled_message, tuple(compiled_params))


def render_template(template: Template, variables: Mapping[str, Any]) -> str:
    """Render ``template``; raise :class:`TemplateProblem` (key ``""``) when it fails on these variables."""
    try:
        return template.render(dict(variables)).strip()
    except TemplateError as exc:
        raise TemplateProblem("", exc.message or str(exc)) from None
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise TemplateProblem("", f"{type(exc).__name__}: {exc}") from None


#: A realistic incident in the shape :func:`sentinel_signl4.domain.render.template_variables` produces.
#: Every variable a template may use is present here, so a template that renders against it only fails at run
#: time on data-dependent lookups (an empty list indexed, say).
SAMPLE_VARIABLES: Mapping[str, Any] = {
    "connector": "contoso",
    "customer": "Contoso Ltd",
    "incident": {
        "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
              "Microsoft.OperationalInsights/workspaces/law/providers/Microsoft.SecurityInsights/incidents/"
              "73e01a99-5cd7-4139-a149-9f2736ff2ab5",
        "name": "73e01a99-5cd7-4139-a149-9f2736ff2ab5",
        "number": 4711,
        "title": "Multi-stage attack on web-01",
        "severity": "High",
        "status": "New",
        "description": "Suspicious sign-in followed by credential dumping.",
        "created": "2026-05-04T03:12:45+00:00",
        "created_utc": "2026-05-04 03:12",
        "provider": "Azure Sentinel",
        "provider_incident_id": "4711",
        "labels": ["Production"],
        "owner": "",
        "alerts_count": 2,
        "url": "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident/subscriptions/…",
    },
    "products": ["Sentinel", "Defender for Endpoint"],
    "tactics": ["Initial Access", "Credential Access"],
    "entities": {"Accounts": ["alice@contoso.com"], "Hosts": ["web-01.contoso.com"], "IPs": ["203.0.113.7"]},
    "entity_groups": [
        {"kind": "Account", "label": "Accounts", "values": ["alice@contoso.com"]},
        {"kind": "Host", "label": "Hosts", "values": ["web-01.contoso.com"]},
        {"kind": "Ip", "label": "IPs", "values": ["203.0.113.7"]},
    ],
    "alerts": [
        {"name": "Suspicious sign-in", "severity": "Medium", "product": "Entra ID Protection", "status": "New",
         "time": "2026-05-04 03:02", "description": "", "compromised_entity": "alice@contoso.com",
         "tactics": ["Initial Access"], "count": 1},
        {"name": "Credential dumping", "severity": "High", "product": "Defender for Endpoint", "status": "New",
         "time": "2026-05-04 03:10", "description": "", "compromised_entity": "web-01",
         "tactics": ["Credential Access"], "count": 3},
    ],
    "rows": [
        {"TimeGenerated": "2026-05-04 03:10", "AlertName": "Credential dumping", "AlertSeverity": "High",
         "CompromisedEntity": "web-01", "ProductName": "Microsoft Defender Advanced Threat Protection"},
    ],
    "links": {"azure": "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident/…",
              "defender": "https://security.microsoft.com/incidents/4711"},
    "notes": [],
    "default": {"title": "4711 | Multi-stage attack on web-01", "message": "Suspicious sign-in followed by …"},
}
