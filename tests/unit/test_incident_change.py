"""The write decisions (``domain/incident_change.py``) as each adapter sends them: a table of incident states, owners
and tags, checked against the exact wire body — Sentinel's PUT (the full writable set with the etag), Graph's PATCH
(only what changes)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from sentinel_signl4.domain import Classification, ClassificationReason, IncidentStatus, Severity
from sentinel_signl4.domain.incident import Incident, Owner
from sentinel_signl4.domain.incident_change import (
    IncidentChange,
    OwnerRef,
    acknowledge_change,
    close_change,
    is_assigned,
    is_owner,
    missing_labels,
    tag_change,
)
from sentinel_signl4.domain.sync import ClassificationChoice
from sentinel_signl4.sources import graph_wire, sentinel_wire

RESPONDER = OwnerRef(object_id="0b1e5e00-0000-4000-8000-000000000001", upn="rene@contoso.com",
                     email="rene.mail@contoso.com")
OTHER_OID = "0b1e5e00-0000-4000-8000-000000000002"
TP = ClassificationChoice(Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY)
COMMENT = "Closed in SIGNL4 by Rene."
ETAG = '"0300bf09-0000-0000-0000-5c37296e0000"'
TAG = "SIGNL4"

#: Who the incident is assigned to as read, and whether a responder is to be assigned.
OWNER_CASES = ("nobody", "same", "different", "no responder")

#: Acknowledge: (status read, owner case) → (status written, responder assigned).
ACKNOWLEDGE = [
    (IncidentStatus.NEW, "nobody", IncidentStatus.ACTIVE, True),
    (IncidentStatus.NEW, "same", IncidentStatus.ACTIVE, False),
    (IncidentStatus.NEW, "different", IncidentStatus.ACTIVE, True),
    (IncidentStatus.NEW, "no responder", IncidentStatus.ACTIVE, False),
    (IncidentStatus.ACTIVE, "nobody", None, True),
    (IncidentStatus.ACTIVE, "same", None, False),
    (IncidentStatus.ACTIVE, "different", None, True),
    (IncidentStatus.ACTIVE, "no responder", None, False),
    (IncidentStatus.CLOSED, "nobody", None, False),  # never reopened, owner left alone
    (IncidentStatus.CLOSED, "same", None, False),
    (IncidentStatus.CLOSED, "different", None, False),
    (IncidentStatus.CLOSED, "no responder", None, False),
]

#: Close: (status read, owner case) → (written at all, responder assigned). A written close sets Closed + verdict.
CLOSE = [
    (IncidentStatus.NEW, "nobody", True, True),
    (IncidentStatus.NEW, "same", True, False),
    (IncidentStatus.NEW, "different", True, False),  # only when nobody is assigned
    (IncidentStatus.NEW, "no responder", True, False),
    (IncidentStatus.ACTIVE, "nobody", True, True),
    (IncidentStatus.ACTIVE, "same", True, False),
    (IncidentStatus.ACTIVE, "different", True, False),
    (IncidentStatus.ACTIVE, "no responder", True, False),
    (IncidentStatus.CLOSED, "nobody", False, False),  # closed already: nothing, not even the tag
    (IncidentStatus.CLOSED, "same", False, False),
    (IncidentStatus.CLOSED, "different", False, False),
    (IncidentStatus.CLOSED, "no responder", False, False),
]


def responder(case: str) -> OwnerRef | None:
    return None if case == "no responder" else RESPONDER


# -- Sentinel ------------------------------------------------------------------------------------------------------

_ARM_STATUS = {IncidentStatus.NEW: "New", IncidentStatus.ACTIVE: "Active", IncidentStatus.CLOSED: "Closed"}


def arm_resource(status: IncidentStatus, case: str, tagged: bool) -> dict[str, Any]:
    owners: dict[str, dict[str, Any]] = {
        "nobody": {}, "no responder": {},
        # The same person, spelled in another case: object ids compare case-insensitively.
        "same": {"objectId": RESPONDER.object_id.upper() if RESPONDER.object_id else None,
                 "userPrincipalName": "rene@contoso.com", "assignedTo": "Rene", "ownerType": "User"},
        "different": {"objectId": OTHER_OID, "userPrincipalName": "ann@contoso.com", "assignedTo": "Ann"},
    }
    owner = owners[case]
    labels = [{"labelName": "Phishing", "labelType": "AutoAssigned"}]
    if tagged:
        labels.append({"labelName": TAG.lower(), "labelType": "User"})
    properties: dict[str, Any] = {
        "title": "Hidden file", "severity": "High", "status": _ARM_STATUS[status], "owner": owner, "labels": labels,
        "description": "d", "firstActivityTimeUtc": "2026-01-01T00:00:00Z", "futureWritableField": {"kept": True},
        "createdTimeUtc": "2026-01-01T00:00:00Z", "lastModifiedTimeUtc": "2026-01-01T00:05:00Z",
        "incidentNumber": 7, "additionalData": {"alertsCount": 1},
    }
    if status is IncidentStatus.CLOSED:
        properties.update(classification="BenignPositive", classificationReason="SuspiciousButExpected")
    return {"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.OperationalInsights/workspaces/w/providers/"
                  "Microsoft.SecurityInsights/incidents/x", "name": "x", "etag": ETAG, "properties": properties}


def sentinel_put(resource: dict[str, Any], decide: Callable[[Incident, OwnerRef | None], IncidentChange],
                 owner: OwnerRef | None) -> dict[str, Any] | None:
    """What SentinelSource sends for ``decide`` on ``resource``: the PUT body, or None (no request)."""
    incident = sentinel_wire.incident_from_arm(resource)
    properties = sentinel_wire.changed_properties(incident, decide(incident, sentinel_wire.assignee(owner)))
    return None if properties is None else sentinel_wire.put_body(incident, properties)


def expected_put(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The PUT body: every writable property as read (read-only ones dropped), ``changes`` applied, the etag."""
    read_only = {"createdTimeUtc", "lastModifiedTimeUtc", "incidentNumber", "additionalData"}
    properties = {k: copy.deepcopy(v) for k, v in resource["properties"].items() if k not in read_only}
    for key, value in changes.items():
        if value is None:
            properties.pop(key, None)
        else:
            properties[key] = value
    return {"properties": properties, "etag": ETAG}


def with_tag(resource: dict[str, Any]) -> list[dict[str, str]]:
    return [*resource["properties"]["labels"], {"labelName": TAG, "labelType": "User"}]


@pytest.mark.parametrize("tagged", [False, True], ids=["tag missing", "tag present"])
@pytest.mark.parametrize(("status", "case", "written_status", "assigned"), ACKNOWLEDGE)
def test_sentinel_acknowledge(status: IncidentStatus, case: str, written_status: IncidentStatus | None,
                              assigned: bool, tagged: bool) -> None:
    resource = arm_resource(status, case, tagged)
    changes: dict[str, Any] = {}
    if written_status is not None:
        changes["status"] = _ARM_STATUS[written_status]
    if assigned:
        changes["owner"] = {"objectId": RESPONDER.object_id}
    if not tagged:
        changes["labels"] = with_tag(resource)
    body = sentinel_put(resource, lambda i, o: acknowledge_change(i, o, (TAG,)), responder(case))
    assert body == (expected_put(resource, **changes) if changes else None)


@pytest.mark.parametrize("tagged", [False, True], ids=["tag missing", "tag present"])
@pytest.mark.parametrize(("status", "case", "written", "assigned"), CLOSE)
def test_sentinel_close(status: IncidentStatus, case: str, written: bool, assigned: bool, tagged: bool) -> None:
    resource = arm_resource(status, case, tagged)
    body = sentinel_put(resource, lambda i, o: close_change(i, TP, COMMENT, o, (TAG,)), responder(case))
    if not written:
        assert body is None
        return
    changes: dict[str, Any] = {"status": "Closed", "classification": "TruePositive",
                               "classificationReason": "SuspiciousActivity", "classificationComment": COMMENT}
    if assigned:
        changes["owner"] = {"objectId": RESPONDER.object_id}
    if not tagged:
        changes["labels"] = with_tag(resource)
    assert body == expected_put(resource, **changes)


@pytest.mark.parametrize("tagged", [False, True], ids=["tag missing", "tag present"])
@pytest.mark.parametrize("status", list(IncidentStatus))
def test_sentinel_tag(status: IncidentStatus, tagged: bool) -> None:
    resource = arm_resource(status, "different", tagged)
    body = sentinel_put(resource, lambda i, _o: tag_change(i, TAG), None)
    assert body == (None if tagged else expected_put(resource, labels=with_tag(resource)))


# -- Graph ---------------------------------------------------------------------------------------------------------

_GRAPH_STATUS = {IncidentStatus.NEW: "active", IncidentStatus.ACTIVE: "inProgress", IncidentStatus.CLOSED: "resolved"}


def graph_item(status: IncidentStatus, case: str, tagged: bool) -> dict[str, Any]:
    assigned = {"nobody": None, "no responder": None, "same": "Rene@Contoso.com", "different": "ann@contoso.com"}[case]
    return {"id": "7", "status": _GRAPH_STATUS[status], "assignedTo": assigned, "displayName": "Hidden file",
            "severity": "high", "classification": "unknown", "determination": "unknown",
            "customTags": ["vip", *([TAG.lower()] if tagged else [])],
            "createdDateTime": "2026-01-01T00:00:00Z", "lastUpdateDateTime": "2026-01-01T00:05:00Z"}


def graph_patch(item: dict[str, Any], decide: Callable[[Incident, OwnerRef | None], IncidentChange],
                owner: OwnerRef | None, *, alert: bool = False) -> dict[str, Any]:
    """What GraphSource sends for ``decide`` on ``item``: the PATCH body ({}: no request)."""
    read = graph_wire.incident_from_graph_alert if alert else graph_wire.incident_from_graph
    incident = read(item, tenant_id="contoso")
    return graph_wire.patch_body(decide(incident, graph_wire.assignee(owner)), item, alert=alert)


@pytest.mark.parametrize("tagged", [False, True], ids=["tag missing", "tag present"])
@pytest.mark.parametrize(("status", "case", "written_status", "assigned"), ACKNOWLEDGE)
def test_graph_acknowledge(status: IncidentStatus, case: str, written_status: IncidentStatus | None,
                           assigned: bool, tagged: bool) -> None:
    item = graph_item(status, case, tagged)
    expected: dict[str, Any] = {}
    if written_status is not None:
        expected["status"] = "inProgress"
    if assigned:
        expected["assignedTo"] = "rene@contoso.com"  # Graph's assignedTo: the UPN
    if not tagged:
        expected["customTags"] = ["vip", TAG]
    assert graph_patch(item, lambda i, o: acknowledge_change(i, o, (TAG,)), responder(case)) == expected


@pytest.mark.parametrize("tagged", [False, True], ids=["tag missing", "tag present"])
@pytest.mark.parametrize(("status", "case", "written", "assigned"), CLOSE)
def test_graph_close(status: IncidentStatus, case: str, written: bool, assigned: bool, tagged: bool) -> None:
    item = graph_item(status, case, tagged)
    expected: dict[str, Any] = {}
    if written:
        expected = {"status": "resolved", "classification": "truePositive", "determination": "other"}
        if assigned:
            expected["assignedTo"] = "rene@contoso.com"
        if not tagged:
            expected["customTags"] = ["vip", TAG]
    assert graph_patch(item, lambda i, o: close_change(i, TP, COMMENT, o, (TAG,)), responder(case)) == expected


@pytest.mark.parametrize("tagged", [False, True], ids=["tag missing", "tag present"])
@pytest.mark.parametrize("status", list(IncidentStatus))
def test_graph_tag(status: IncidentStatus, tagged: bool) -> None:
    item = graph_item(status, "different", tagged)
    body = graph_patch(item, lambda i, _o: tag_change(i, TAG), None)
    assert body == ({} if tagged else {"customTags": ["vip", TAG]})


@pytest.mark.parametrize(("status", "expected"), [
    ("new", {"status": "inProgress", "assignedTo": "rene@contoso.com"}),
    ("inProgress", {"assignedTo": "rene@contoso.com"}),
    ("resolved", {}),
])
def test_graph_alerts_take_the_alert_statuses_and_no_tags(status: str, expected: dict[str, str]) -> None:
    item = {"id": "da1", "status": status, "createdDateTime": "2026-01-01T00:00:00Z", "incidentId": "7"}
    assert graph_patch(item, lambda i, o: acknowledge_change(i, o, (TAG,)), RESPONDER, alert=True) == expected


def test_graph_assigns_the_email_when_there_is_no_upn_and_a_display_name_counts_as_assigned() -> None:
    item = graph_item(IncidentStatus.NEW, "nobody", tagged=True)
    by_mail = OwnerRef(object_id=RESPONDER.object_id, email="rene.mail@contoso.com")
    assert graph_patch(item, lambda i, o: acknowledge_change(i, o), by_mail) == {
        "status": "inProgress", "assignedTo": "rene.mail@contoso.com"}
    named = {**item, "assignedTo": "Ann Analyst"}  # free text: somebody is assigned
    assert "assignedTo" not in graph_patch(named, lambda i, o: close_change(i, TP, COMMENT, o), RESPONDER)


# -- the rules themselves --------------------------------------------------------------------------------------


def test_owner_identity_compares_the_identifier_given_with_the_same_one_or_the_name() -> None:
    owner = Owner(object_id="OID-1", upn="a@x.com", email="mail@x.com", name="Ann")
    assert is_owner(owner, OwnerRef(object_id="oid-1"))
    assert is_owner(owner, OwnerRef(upn="A@X.com"))
    assert is_owner(Owner(name="a@x.com"), OwnerRef(upn="a@x.com"))  # free text naming the UPN
    assert not is_owner(owner, OwnerRef(object_id="oid-2"))
    assert not is_owner(owner, OwnerRef(upn="mail@x.com"))  # a UPN is not compared with the e-mail address
    assert not is_owner(Owner(), OwnerRef(upn="a@x.com"))


def test_assigned_means_an_identifier_or_a_name_that_is_not_blank() -> None:
    assert not is_assigned(Owner())
    assert not is_assigned(Owner(name="  "))
    assert is_assigned(Owner(name="Ann Analyst"))
    assert is_assigned(Owner(email="a@x.com"))


def test_missing_labels_are_case_insensitive_and_each_once() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    incident = Incident(resource_id="r", name="r", number=1, title="t", severity=Severity.HIGH,
                        status=IncidentStatus.NEW, created=moment, last_modified=moment, labels=("Vip",))
    assert missing_labels(incident, ["vip", "SIGNL4", "signl4", "Other"]) == ("SIGNL4", "Other")


def test_owner_ref_only_keeps_the_first_identifier_of_the_kinds_asked() -> None:
    assert RESPONDER.only("email", "upn") == OwnerRef(email="rene.mail@contoso.com")
    assert OwnerRef(upn="u@x").only("object_id") is None
    assert OwnerRef(upn="u@x").identifier == "u@x"
    assert IncidentChange().is_empty and not IncidentChange(labels=("x",)).is_empty
