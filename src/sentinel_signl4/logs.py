"""Logging: one formatter for every line of the process.

structlog events of the connector and stdlib records of libraries (azure-identity, azure-core, uvicorn, alembic,
asyncio, httpx) all pass one structlog ``ProcessorFormatter``: with ``format = "json"`` every line is one JSON object
with ``timestamp``, ``level``, ``logger`` and ``event``, plus ``connector`` where the line was written while a
connector was working (bound by :func:`connector_context`). Every line passes a redaction processor that removes
known secret values and URL secrets, so a secret never reaches a log line even if a library puts it into an
exception message. Field vocabulary: ``connector``, ``incident`` (the incident number), ``incident_id`` (its id),
``external_id`` (the Signl's ExternalID).
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from sentinel_signl4.redact import Redactor

__all__ = ["configure_logging", "connector_context", "redaction_processor", "standalone_logger"]

#: Libraries log from WARNING up; the connector's own loggers ("sentinel_signl4.*") from the configured level.
_LIBRARY_LEVEL = logging.WARNING
_OWN = "sentinel_signl4"


def redaction_processor(redactor: Redactor) -> Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]:
    def process(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            event[key] = _scrub(value, redactor)
        return event

    return process


def _scrub(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, BaseException):
        return redactor.redact(f"{type(value).__name__}: {value}")
    if isinstance(value, dict):
        return {k: _scrub(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, redactor) for v in value]
    return value


def connector_context(name: str) -> contextvars.Context:
    """A copy of the current context in which every log line (libraries' included) carries ``connector=name``;
    pass it to ``create_task(..., context=…)``."""
    context = contextvars.copy_context()
    context.run(structlog.contextvars.bind_contextvars, connector=name)
    return context


def configure_logging(*, level: str = "info", fmt: str = "console", secrets: Iterable[str] = (),
                      stream: TextIO | None = None) -> Redactor:
    """Configure structlog and stdlib logging once per process; return the redactor in use."""
    redactor = Redactor(secrets)
    numeric = getattr(logging, level.upper(), logging.INFO)
    shared = _shared()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_tail(redactor, fmt)],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, _LIBRARY_LEVEL))
    own = logging.getLogger(_OWN)
    own.setLevel(numeric)
    own.propagate = True
    # Loggers that bring their own handlers (uvicorn's defaults) would write a second, differently formatted line.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        library = logging.getLogger(name)
        library.handlers[:] = []
        library.propagate = True
    logging.captureWarnings(True)
    return redactor


def standalone_logger(name: str, *, redactor: Redactor, fmt: str = "console",
                      stream: TextIO | None = None) -> Any:
    """A structlog logger with the same processors as :func:`configure_logging`, without touching the global
    configuration: for short-lived commands (``outbox retry``) whose audit events must be written whatever the
    configured level, and which may run inside another program (tests)."""
    def add_name(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("logger", name)
        return event

    processors = [structlog.contextvars.merge_contextvars, structlog.processors.add_log_level, add_name,
                  structlog.processors.TimeStamper(fmt="iso", utc=True), *_tail(redactor, fmt)]
    return structlog.wrap_logger(structlog.PrintLogger(stream or sys.stderr), processors=processors,
                                 wrapper_class=structlog.BoundLogger, cache_logger_on_first_use=False,
                                 logger_name=name)


def _shared() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _tail(redactor: Redactor, fmt: str) -> list[Any]:
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    return [structlog.processors.format_exc_info, redaction_processor(redactor), renderer]
