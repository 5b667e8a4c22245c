"""Defender merges as a Sentinel workspace onboarded to the Defender portal shows them through the 2025-09-01 API."""

from __future__ import annotations

from emulators_world import Arm
from sentinel_signl4_emulators.app import EmulatorState
from spec_validation import assert_valid


async def test_merge_closes_the_source_with_the_redirected_tag_and_moves_alerts_and_tags(
        arm: Arm, state: EmulatorState) -> None:
    workspace = arm.world.workspace
    sentinel = arm.http.post
    source = state.sentinel.create_incident(workspace, title="Hidden file executed", severity="Low",
                                                labels=["SIGNL4", "Finance"])["name"]
    target = arm.world.incident_names[-1]  # New, with alerts
    before = state.sentinel.get_incident(workspace, target)["properties"]
    alerts_before = len(state.sentinel.alerts(workspace, target))
    state.sentinel.update_incident_as_analyst(workspace, target, add_labels=["finance"])
    response = await sentinel(f"/_control/sentinel/incidents/{source}/merge", json={"into": target})
    assert response.status_code == 200, response.text
    merged = (await arm.get(arm.incident_url(source))).json()
    assert_valid(merged, "Incident")
    props = merged["properties"]
    assert props["status"] == "Closed" and props["classification"] == "Undetermined"
    assert [(label["labelName"], label["labelType"]) for label in props["labels"]] == [("Redirected", "AutoAssigned")]
    assert props["additionalData"]["alertsCount"] == 0
    assert "mergedIncidentNumber" not in props["additionalData"]  # the stable API does not name the survivor
    survivor = (await arm.get(arm.incident_url(target))).json()["properties"]
    assert [label["labelName"] for label in survivor["labels"]] == ["finance", "SIGNL4"]  # "Finance" was there
    assert survivor["status"] == before["status"]
    assert len(state.sentinel.alerts(workspace, target)) == alerts_before
    assert survivor["lastModifiedTimeUtc"] > before["lastModifiedTimeUtc"]


async def test_closed_incidents_are_not_merged(arm: Arm, state: EmulatorState) -> None:
    workspace = arm.world.workspace
    closed = state.sentinel.create_incident(workspace, title="Done", severity="Low", status="Closed",
                                                classification="Undetermined")["name"]
    open_one = arm.world.incident_names[-1]
    response = await arm.http.post(f"/_control/sentinel/incidents/{closed}/merge", json={"into": open_one})
    assert response.status_code == 400 and "Closed incidents are not merged" in response.text
    itself = await arm.http.post(f"/_control/sentinel/incidents/{open_one}/merge", json={"into": open_one})
    assert itself.status_code == 400
