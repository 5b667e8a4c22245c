"""structlog setup. Every event passes a redaction processor that removes known secret values and URL secrets,
so a secret never reaches a log line even if some library puts it into an exception message."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from sentinel_signl4.redact import Redactor

__all__ = ["configure_logging", "redaction_processor", "standalone_logger"]


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


def configure_logging(*, level: str = "info", fmt: str = "console", secrets: Iterable[str] = (),
                      stream: TextIO | None = None) -> Redactor:
    """Configure structlog (and stdlib logging of libraries) once per process; return the redactor in use."""
    redactor = Redactor(secrets)
    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=_processors(redactor, fmt),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries (azure-identity, httpx, uvicorn) log through stdlib; keep them quiet and redacted.
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_StdlibRedactFilter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))
    return redactor


def standalone_logger(name: str, *, redactor: Redactor, fmt: str = "console",
                      stream: TextIO | None = None) -> Any:
    """A structlog logger with the same processors as :func:`configure_logging`, without touching the global
    configuration: for short-lived commands (``outbox retry``) whose audit events must be written whatever the
    configured level, and which may run inside another program (tests)."""
    return structlog.wrap_logger(structlog.PrintLogger(stream or sys.stderr), processors=_processors(redactor, fmt),
                                 wrapper_class=structlog.BoundLogger, cache_logger_on_first_use=False,
                                 logger_name=name)


def _processors(redactor: Redactor, fmt: str) -> list[Any]:
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redaction_processor(redactor),
        renderer,
    ]


class _StdlibRedactFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redactor.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
