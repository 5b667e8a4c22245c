"""Defender merges through the Sentinel source: what 2025-09-01 shows (Closed + tag Redirected, no survivor) and the
survivor lookup by number used when a newer API version names it (``additionalData.mergedIncidentNumber``)."""

from __future__ import annotations

import copy

from clients_world import World
from sentinel_signl4.clients.sentinel import SentinelClient
from sentinel_signl4.sources.sentinel import SentinelSource
from sentinel_signl4.sources.sentinel_wire import incident_from_arm, merged_into_number


async def test_a_merged_incident_reads_as_merged_and_the_stable_api_names_no_survivor(
        world: World, sentinel: SentinelClient) -> None:
    merged, survivor = world.incident(title="Hidden file"), world.incident(title="Multi-stage")
    world.state.sentinel.merge_incidents(world.workspace.ref, merged["name"], survivor["name"])
    source = SentinelSource(sentinel)
    read = await source.get(merged["id"])
    assert read.merged and read.status.value == "Closed" and read.labels == ("Redirected",)
    assert not (await source.get(survivor["id"])).merged
    assert await source.follow_merge(read) is None


async def test_a_closed_incident_with_a_user_tag_named_otherwise_is_not_a_merge(
        world: World, sentinel: SentinelClient) -> None:
    closed = world.incident(title="Done", labels=["redirected-by-rule"])
    world.state.sentinel.close_incident_as_analyst(world.workspace.ref, closed["name"], classification="Undetermined")
    assert not (await SentinelSource(sentinel).get(closed["id"])).merged


async def test_the_survivor_is_found_by_number_when_the_api_version_names_it(
        world: World, sentinel: SentinelClient) -> None:
    merged, survivor = world.incident(title="Hidden file"), world.incident(title="Multi-stage")
    world.incident(title="Unrelated")
    world.state.sentinel.merge_incidents(world.workspace.ref, merged["name"], survivor["name"])
    resource = copy.deepcopy(world.state.sentinel.get_incident(world.workspace.ref, merged["name"]))
    # What a newer (preview) API version adds to the merged incident; 2025-09-01 lacks the field.
    resource["properties"]["additionalData"]["mergedIncidentNumber"] = str(survivor["properties"]["incidentNumber"])
    incident = incident_from_arm(resource)
    assert merged_into_number(incident) == survivor["properties"]["incidentNumber"]
    found = await SentinelSource(sentinel).follow_merge(incident)
    assert found is not None and found.name == survivor["name"]
    assert await sentinel.find_incident_by_number(99_999) is None


def test_merged_into_number_ignores_what_cannot_be_a_survivor(world: World) -> None:
    resource = copy.deepcopy(world.incident(title="x", status="Closed", classification="Undetermined",
                                            labels=["Redirected"]))
    own = resource["properties"]["incidentNumber"]
    for value in (None, "", "abc", "0", str(own), True, -3):
        resource["properties"]["additionalData"]["mergedIncidentNumber"] = value
        assert merged_into_number(incident_from_arm(resource)) is None, value
    resource["properties"]["additionalData"]["mergedIncidentNumber"] = 1234
    assert merged_into_number(incident_from_arm(resource)) == 1234
    resource["properties"]["status"] = "Active"  # not merged: the field means nothing then
    assert merged_into_number(incident_from_arm(resource)) is None
