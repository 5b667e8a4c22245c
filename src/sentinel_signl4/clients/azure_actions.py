"""The Azure RBAC actions each remote call needs, declared next to the call.

``@requires_actions(INCIDENTS_READ)`` on a client method says which actions of Microsoft's resource-provider
operations list the call needs. ``provision`` builds each connector's custom role from these declarations, so the
role follows the code: a new call without a declaration needs no right, a declared one is in the role.

:func:`recording_actions` collects the actions declared by every call made inside it (the calls of a real run), so a
test can prove that the role holds exactly what the code paths use. Outside it the declaration costs one context
variable lookup per call.

Sources of every action name: docs/decisions.md ("Provisioning: the role's actions").
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sentinel_signl4.domain.kql_tables import tables_read_by

__all__ = [
    "COMMENTS_READ",
    "COMMENTS_WRITE",
    "INCIDENTS_READ",
    "INCIDENTS_WRITE",
    "QUERY_READ",
    "WORKSPACE_READ",
    "ActionDeclaration",
    "declaration_of",
    "missing_action_hint",
    "query_table_actions",
    "recording_actions",
    "requires_actions",
    "table_read_action",
]

# Microsoft.SecurityInsights (Sentinel) operations, on the workspace's Microsoft.SecurityInsights extension.
INCIDENTS_READ = "Microsoft.SecurityInsights/incidents/read"
INCIDENTS_WRITE = "Microsoft.SecurityInsights/incidents/write"
COMMENTS_READ = "Microsoft.SecurityInsights/incidents/comments/read"
COMMENTS_WRITE = "Microsoft.SecurityInsights/incidents/comments/write"
# Microsoft.OperationalInsights (Log Analytics): read the workspace, run a query, read one table (legacy table-level
# RBAC: `workspaces/query/<Table>/read` grants that table only, where `Log Analytics Reader` grants every table).
WORKSPACE_READ = "Microsoft.OperationalInsights/workspaces/read"
QUERY_READ = "Microsoft.OperationalInsights/workspaces/query/read"

F = TypeVar("F", bound=Callable[..., Any])
PerCall = Callable[[Mapping[str, Any]], Iterable[str]]

_recorder: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("azure_actions", default=None)


def table_read_action(table: str) -> str:
    """The table-level read action of Log Analytics table ``table``.

    Custom log tables (``…_CL``) cannot be granted one by one with these actions: Microsoft documents
    ``query/Tables.Custom/read`` for all of them together.
    """
    if table.endswith("_CL"):
        return "Microsoft.OperationalInsights/workspaces/query/Tables.Custom/read"
    return f"Microsoft.OperationalInsights/workspaces/query/{table}/read"


def query_table_actions(arguments: Mapping[str, Any]) -> Iterable[str]:
    """One table-level read action per table the call's ``kql`` argument reads."""
    return sorted({table_read_action(table) for table in tables_read_by(str(arguments["kql"]))})


@dataclass(frozen=True)
class ActionDeclaration:
    """What one client method needs: fixed actions, plus actions derived from the call's arguments."""

    static: frozenset[str]
    per_call: PerCall | None
    signature: inspect.Signature

    def actions(self, arguments: Mapping[str, Any]) -> frozenset[str]:
        """The actions of a call with these arguments (by parameter name)."""
        extra = frozenset(self.per_call(arguments)) if self.per_call is not None else frozenset()
        return self.static | extra

    def _record(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        recorder = _recorder.get()
        if recorder is None:
            return
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        recorder.update(self.actions(bound.arguments))


def requires_actions(*actions: str, per_call: PerCall | None = None) -> Callable[[F], F]:
    """Declare the Azure actions a client method needs; ``per_call`` derives more from the call's arguments."""

    def decorate(func: F) -> F:
        declaration = ActionDeclaration(frozenset(actions), per_call, inspect.signature(func))
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def call_async(*args: Any, **kwargs: Any) -> Any:
                declaration._record(args, kwargs)
                return await func(*args, **kwargs)
            wrapper: Callable[..., Any] = call_async
        else:  # an async generator (a listing): recorded when the listing is started
            @functools.wraps(func)
            def call(*args: Any, **kwargs: Any) -> Any:
                declaration._record(args, kwargs)
                return func(*args, **kwargs)
            wrapper = call
        wrapper.__azure_actions__ = declaration  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def declaration_of(method: Callable[..., Any]) -> ActionDeclaration:
    """The declaration of a decorated client method (``TypeError`` for an undeclared one)."""
    declaration = getattr(method, "__azure_actions__", None)
    if not isinstance(declaration, ActionDeclaration):
        raise TypeError(f"{getattr(method, '__qualname__', method)!r} declares no Azure actions")
    return declaration


@contextlib.contextmanager
def recording_actions() -> Iterator[set[str]]:
    """Collect the actions declared by every call made in this context (and the tasks it starts)."""
    used: set[str] = set()
    token = _recorder.set(used)
    try:
        yield used
    finally:
        _recorder.reset(token)


# ARM's AuthorizationFailed text names the action it checked: "... does not have authorization to perform action
# 'Microsoft.SecurityInsights/incidents/read' over scope '...'".
_ARM_ACTION = re.compile(r"perform action '([^']+)'")


def missing_action_hint(message: str, declared: Iterable[str], where: str) -> str:
    """What to tell an operator whose call was refused (403): the action that is missing (as ARM names it, else the
    actions the call declares) and how to grant it, through the connector's custom role."""
    named = _ARM_ACTION.search(message)
    actions = [named.group(1)] if named else sorted(set(declared))
    which = "action " + ", ".join(actions) if len(actions) == 1 else "one of the actions " + ", ".join(actions)
    return (f"the identity lacks {which} on {where}: run `sentinel-signl4 provision apply` to create or update the "
            "connector's custom role and its assignment (or review them with `sentinel-signl4 provision plan` and "
            "`sentinel-signl4 provision role-definition`)")
