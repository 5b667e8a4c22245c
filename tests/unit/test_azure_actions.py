"""The Azure actions the clients declare: names from Microsoft's published operations list, recorded per call."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator

from sentinel_signl4.clients.azure_actions import (
    INCIDENTS_READ,
    ActionDeclaration,
    declaration_of,
    recording_actions,
    requires_actions,
)
from sentinel_signl4.clients.loganalytics import LogAnalyticsClient
from sentinel_signl4.clients.sentinel import SentinelClient

# Microsoft's resource-provider operations ("Azure permissions for Security" § Microsoft.SecurityInsights, and
# "Manage table-level access" for Microsoft.OperationalInsights): the only names a declaration may use.
PUBLISHED = {
    "Microsoft.SecurityInsights/incidents/read",
    "Microsoft.SecurityInsights/incidents/write",
    "Microsoft.SecurityInsights/incidents/comments/read",
    "Microsoft.SecurityInsights/incidents/comments/write",
    "Microsoft.OperationalInsights/workspaces/read",
    "Microsoft.OperationalInsights/workspaces/query/read",
}
TABLE_READ = re.compile(r"^Microsoft\.OperationalInsights/workspaces/query/[A-Za-z0-9_.]+/read$")


def declarations() -> dict[str, ActionDeclaration]:
    found: dict[str, ActionDeclaration] = {}
    for cls in (SentinelClient, LogAnalyticsClient):
        for name, member in inspect.getmembers(cls, callable):
            if hasattr(member, "__azure_actions__"):
                found[f"{cls.__name__}.{name}"] = declaration_of(member)
    return found


def test_every_remote_call_of_the_workspace_clients_declares_its_actions() -> None:
    found = declarations()
    public = {f"{cls.__name__}.{name}" for cls in (SentinelClient, LogAnalyticsClient)
              for name, member in inspect.getmembers(cls, inspect.isfunction)
              if not name.startswith("_") and name not in ("close",)}
    assert public - set(found) == set(), "a public call without an Azure action declaration"


def test_declared_actions_are_published_operation_names() -> None:
    for where, declaration in declarations().items():
        for action in declaration.static:
            assert action in PUBLISHED or TABLE_READ.match(action), f"{where}: {action} is not a published name"
    query = declaration_of(LogAnalyticsClient.query)
    for action in query.actions({"kql": "SecurityIncident | join (SecurityAlert) on Id"}):
        assert action in PUBLISHED or TABLE_READ.match(action)


async def test_calls_are_recorded_only_inside_the_recording_context_and_in_the_tasks_it_starts() -> None:
    class Client:
        @requires_actions(INCIDENTS_READ)
        async def read(self) -> int:
            return 1

        @requires_actions("Microsoft.SecurityInsights/incidents/write")
        async def listing(self) -> AsyncIterator[int]:
            yield 1

    client = Client()
    assert await client.read() == 1
    with recording_actions() as used:
        assert [x async for x in client.listing()] == [1]
        assert used == {"Microsoft.SecurityInsights/incidents/write"}
        await asyncio.create_task(client.read())
    await client.read()
    assert used == {INCIDENTS_READ, "Microsoft.SecurityInsights/incidents/write"}
    assert inspect.iscoroutinefunction(Client.read)
