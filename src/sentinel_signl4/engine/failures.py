"""How a failure is told to the operator: the underlying errors, never a task-group wrapper.

``asyncio.TaskGroup`` wraps whatever its tasks raise in an ``ExceptionGroup`` ("unhandled errors in a TaskGroup
(1 sub-exception)"), which says nothing about the cause. Every place that reports a step or cycle failure (health,
report, logs) describes it with :func:`describe_error`.
"""

from __future__ import annotations

from sentinel_signl4.errors import RemoteError

__all__ = ["describe_error", "leaf_errors"]

#: At most this many distinct causes are spelled out; the rest are counted.
_MAX_SHOWN = 3


def leaf_errors(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc``, with (nested) exception groups flattened; ``[exc]`` for a plain one."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in leaf_errors(sub)]
    return [exc]


def describe_error(exc: BaseException) -> str:
    """``"Type: message"`` of each underlying error (remote errors by their redacted message), de-duplicated,
    joined with ``"; "``."""
    shown: list[str] = []
    for leaf in leaf_errors(exc):
        message = leaf.message if isinstance(leaf, RemoteError) else str(leaf)
        text = f"{type(leaf).__name__}: {message}" if message else type(leaf).__name__
        if text not in shown:
            shown.append(text)
    if len(shown) > _MAX_SHOWN:
        shown = [*shown[:_MAX_SHOWN], f"and {len(shown) - _MAX_SHOWN} more"]
    return "; ".join(shown)
