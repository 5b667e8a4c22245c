"""The emulators' own vocabularies are the services' published ones (tests/specs), value for value, in order."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from sentinel_signl4_emulators.graph import vocab as graph_vocab
from sentinel_signl4_emulators.graph.enums import ENUM_VALUES, EVOLVABLE
from sentinel_signl4_emulators.sentinel import vocab as sentinel_vocab

SPECS = Path(__file__).resolve().parents[1] / "specs"
GRAPH_ENUMS: dict[str, Any] = json.loads((SPECS / "graph" / "security-enums.json").read_text())
INCIDENT_TYPES: dict[str, Any] = json.loads(next(SPECS.glob(
    "azure-rest-api-specs/**/stable/2024-09-01/common/IncidentTypes.json")).read_text())


def test_every_graph_enum_the_emulator_checks_is_the_sdk_one() -> None:
    assert {"incidentStatus", "alertStatus", "alertSeverity", "alertClassification", "alertDetermination",
            "serviceSource", "detectionSource"} <= set(ENUM_VALUES)
    for name, values in ENUM_VALUES.items():
        assert list(values) == GRAPH_ENUMS[name]["values"], name


def test_the_values_the_graph_emulator_acts_on_are_graph_values() -> None:
    assert graph_vocab.INCIDENT_REDIRECTED in GRAPH_ENUMS["incidentStatus"]["values"]
    assert graph_vocab.ALERT_RESOLVED in GRAPH_ENUMS["alertStatus"]["values"]
    named = {k for k in GRAPH_ENUMS["serviceSource"]["values"] if graph_vocab.service_source_display_name(k)}
    assert named == set(GRAPH_ENUMS["serviceSource"]["values"]) - {"unknown", "unknownFutureValue"}


def test_evolvable_members_are_those_after_unknown_future_value() -> None:
    assert EVOLVABLE["incidentStatus"] == {"awaitingAction"}
    for name, members in EVOLVABLE.items():
        values = GRAPH_ENUMS[name]["values"]
        assert members == set(values[values.index("unknownFutureValue") + 1:])


@pytest.mark.parametrize(("enum", "name"), [
    (sentinel_vocab.Severity, "IncidentSeverityEnum"),
    (sentinel_vocab.IncidentStatus, "IncidentStatusEnum"),
    (sentinel_vocab.Classification, "IncidentClassificationEnum"),
    (sentinel_vocab.ClassificationReason, "IncidentClassificationReasonEnum"),
])
def test_sentinel_enum_is_the_arm_contract_one(enum: type[StrEnum], name: str) -> None:
    assert [member.value for member in enum] == INCIDENT_TYPES["definitions"][name]["enum"]
