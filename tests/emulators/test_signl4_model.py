"""The SIGNL4 emulator's state model, without HTTP: parsing semantics, lifecycle, throttling windows, ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from fake_clock import FakeClock
from sentinel_signl4_emulators.signl4.model import (
    AlertStatus,
    ConflictError,
    EventStatus,
    InvalidRequestError,
    NotFoundError,
    RateLimit,
    RateLimitPolicy,
    RawParameter,
    Signl4Model,
    StatusMapping,
    extract_title_and_text,
    format_utc,
    limits_for_plan,
    new_signl4_id,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
ID_FORMAT = re.compile(r"^\d{19}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def model(clock: FakeClock) -> Signl4Model:
    model = Signl4Model(clock, seed=7)
    model.create_subscription("sub-1")
    model.create_team("sub-1", "Ops", team_id="team-1", secret="s3cret")
    model.create_team("sub-1", "Facilities", team_id="team-2", secret="other")
    model.create_user("sub-1", "Rene", "rene@signl4.com", user_id="u-rene", team_ids=["team-1"])
    model.create_user("sub-1", "Ann", "ann@signl4.com", user_id="u-ann", team_ids=["team-1"])
    return model


def params(**fields: str) -> list[RawParameter]:
    return [RawParameter(name.replace("_", "-"), value) for name, value in fields.items()]


def raise_new(model: Signl4Model, external_id: str, team: str = "team-1", title: str = "T") -> str:
    event = model.raise_event(team, [RawParameter("Title", title), RawParameter("X-S4-ExternalID", external_id)])
    return event.target_alert_ids[0]


# -- ids and timestamps --------------------------------------------------------------------------------------------


def test_ids_have_the_documented_shape_and_sort_newest_first() -> None:
    older, newer = new_signl4_id(T0), new_signl4_id(T0 + timedelta(milliseconds=1))
    assert ID_FORMAT.match(older)
    assert ID_FORMAT.match(newer)
    assert newer < older


@pytest.mark.parametrize(("sample_id", "raised"), [
    ("2518236416804564453_12ea0f6f-948c-43d0-9034-f9565d7b6bd2", "2020-01-10T12:27:19+00:00"),  # 202 sample
    ("2518783235949759942_fbc7b4a4-badd-47b8-9e1d-702fb6a1a0b2", "2018-04-17T15:00:32+00:00"),  # 203 sample
])
def test_published_sample_ids_decode_to_just_before_their_notification(sample_id: str, raised: str) -> None:
    """The 19-digit prefix is DateTime.MaxValue.Ticks minus the creation ticks, as the emulator generates it."""
    ticks = 3_155_378_975_999_999_999 - int(sample_id.split("_")[0])
    created = datetime(1, 1, 1, tzinfo=UTC) + timedelta(microseconds=ticks // 10)
    assert timedelta(0) < datetime.fromisoformat(raised) - created < timedelta(minutes=3)
    # Python datetimes stop at microseconds; .NET ticks are 100 ns.
    assert abs(int(new_signl4_id(created)[:19]) - int(sample_id[:19])) < 10


def test_timestamps_have_seven_fractional_digits_and_z() -> None:
    assert format_utc(datetime(2017, 9, 1, 8, 11, 37, 481566, tzinfo=UTC)) == "2017-09-01T08:11:37.4815660Z"


# -- title and text (ref §1.3) --------------------------------------------------------------------------------------


def test_title_and_text_follow_the_documented_search_order_case_insensitively() -> None:
    title, text, rest = extract_title_and_text(
        [RawParameter("job", "the job"), RawParameter("SUBJECT", "the subject"), RawParameter("Body", "the body"),
         RawParameter("messagetext", "the message text"), RawParameter("Gate", "A45")]
    )
    assert (title, text) == ("the subject", "the message text")
    assert [p.name for p in rest] == ["job", "SUBJECT", "Body", "messagetext", "Gate"]


def test_non_string_values_are_skipped_by_the_title_search() -> None:
    title, _, _ = extract_title_and_text([RawParameter("Title", "42", is_text=False), RawParameter("Task", "t")])
    assert title == "t"


def test_fallback_takes_the_first_text_values_and_removes_them_but_never_control_parameters() -> None:
    title, text, rest = extract_title_and_text(
        [RawParameter("X-S4-ExternalID", "INC1"), RawParameter("Count", "3", is_text=False),
         RawParameter("Gate Id", "A45"), RawParameter("Source", "Gate agent"), RawParameter("Type", "Security")]
    )
    assert (title, text) == ("A45", "Gate agent")
    assert [p.name for p in rest] == ["X-S4-ExternalID", "Count", "Type"]


# -- inbound events ------------------------------------------------------------------------------------------------


def test_a_second_new_event_with_the_same_external_id_creates_a_second_alert(model: Signl4Model) -> None:
    first, second = raise_new(model, "INC1"), raise_new(model, "INC1")
    assert first != second
    assert [a.status for a in model.list_alerts(external_id="INC1")] == [AlertStatus.OPEN, AlertStatus.OPEN]


def test_resolved_closes_only_the_alerts_created_by_that_external_id_in_that_team(model: Signl4Model) -> None:
    mine = [raise_new(model, "INC1"), raise_new(model, "INC1")]
    other_id = raise_new(model, "INC2")
    other_team = raise_new(model, "INC1", team="team-2")
    event = model.raise_event("team-1", params(X_S4_ExternalID="INC1", X_S4_Status="resolved"))
    assert event.status is EventStatus.RESOLVED
    assert sorted(event.closed_alert_ids) == sorted(mine)
    assert all(model.alerts[a].status == AlertStatus.CLOSED for a in mine)
    assert model.alerts[other_id].status == AlertStatus.OPEN
    assert model.alerts[other_team].status == AlertStatus.OPEN


def test_acknowledged_acts_on_open_alerts_and_leaves_closed_ones(model: Signl4Model) -> None:
    closed, open_ = raise_new(model, "INC1"), raise_new(model, "INC1")
    model.close(closed, "u-rene")
    event = model.raise_event("team-1", params(X_S4_ExternalID="INC1", X_S4_Status="Acknowledged"))
    assert event.acknowledged_alert_ids == [open_]
    assert model.alerts[open_].status == AlertStatus.ACKNOWLEDGED
    assert model.alerts[closed].status == AlertStatus.CLOSED


def test_resolve_without_a_matching_alert_and_unknown_status_are_discarded(model: Signl4Model) -> None:
    nothing = model.raise_event("team-1", params(X_S4_ExternalID="nope", X_S4_Status="resolved"))
    odd = model.raise_event("team-1", params(Title="x", X_S4_ExternalID="INC9", X_S4_Status="firing"))
    assert nothing.status is EventStatus.DISCARDED
    assert odd.status is EventStatus.DISCARDED
    assert model.list_alerts() == []


def test_empty_status_means_new(model: Signl4Model) -> None:
    event = model.raise_event("team-1", params(Title="Hi", X_S4_ExternalID="test101", X_S4_Status=""))
    assert event.status is EventStatus.SIGNLED
    assert len(event.target_alert_ids) == 1


def test_query_mapping_resolves_and_discards_per_new_status(model: Signl4Model) -> None:
    mapping = StatusMapping(ext_id_param="alertId", ext_status_param="state", new_status="Triggered",
                            resolved_status="Recovered", ack_status="Pending")
    created = model.raise_event("team-1", params(alertId="42", state="Triggered", msg="CPU"), mapping=mapping)
    assert created.external_id == "42"
    assert created.status is EventStatus.SIGNLED
    assert model.raise_event("team-1", params(alertId="42", state="Warn"), mapping=mapping).status is \
        EventStatus.DISCARDED
    assert model.raise_event("team-1", params(alertId="42", state="pending"), mapping=mapping).status is \
        EventStatus.ACKNOWLEDGED
    assert model.raise_event("team-1", params(alertId="42", state="Recovered"), mapping=mapping).status is \
        EventStatus.RESOLVED


def test_category_and_flags_come_from_control_parameters(model: Signl4Model) -> None:
    event = model.raise_event("team-1", params(Title="t", X_S4_Service="Security", X_S4_Location="52.39,13.05",
                                               X_S4_AlertingScenario="multi_ack"))
    alert = model.alerts[event.target_alert_ids[0]]
    assert alert.category == "Security"
    assert alert.category_id is not None
    assert alert.required_acknowledgements == 2  # both members of team-1
    assert alert.flags & 8


# -- lifecycle ------------------------------------------------------------------------------------------------------


def test_lifecycle_conflicts(model: Signl4Model) -> None:
    alert_id = raise_new(model, "INC1")
    model.acknowledge(alert_id, "u-rene")
    with pytest.raises(ConflictError):
        model.acknowledge(alert_id, "rene@signl4.com")  # same user again
    model.acknowledge(alert_id, "u-ann")  # a second responder may join
    assert model.alerts[alert_id].acknowledgements == ["u-rene", "u-ann"]
    with pytest.raises(ConflictError):
        model.escalate(alert_id)  # only open alerts escalate
    model.close(alert_id, "u-ann")
    with pytest.raises(ConflictError):
        model.close(alert_id, "u-rene")
    with pytest.raises(ConflictError):
        model.acknowledge(alert_id, "u-rene")
    assert model.annotate(alert_id, "u-rene", "post mortem").text == "post mortem"  # notes are always allowed


def test_actions_on_unknown_things_are_not_found(model: Signl4Model) -> None:
    alert_id = raise_new(model, "INC1")
    with pytest.raises(NotFoundError):
        model.close("2518981069381242800_00000000-0000-0000-0000-000000000000", "u-rene")
    with pytest.raises(NotFoundError):
        model.acknowledge(alert_id, "nobody@example.com")
    with pytest.raises(InvalidRequestError):
        model.annotate(alert_id, "u-rene", "   ")


def test_close_records_who_and_when(model: Signl4Model, clock: FakeClock) -> None:
    alert_id = raise_new(model, "INC1")
    clock.advance(30)
    alert = model.close(alert_id, "ann@signl4.com")
    assert (alert.closed_by, alert.closed_at, alert.last_modified) == ("u-ann", clock.now, clock.now)


def test_outbound_webhook_cannot_be_the_teams_own_inbound_webhook(model: Signl4Model) -> None:
    with pytest.raises(InvalidRequestError):
        model.register_webhook("sub-1", "https://connect.signl4.com/webhook/s3cret", team_id="team-1")


# -- throttling (ref §1.7) ------------------------------------------------------------------------------------------


def test_exceeding_a_window_blocks_for_the_same_period_from_the_refusal(model: Signl4Model, clock: FakeClock) -> None:
    model.set_rate_limits(RateLimitPolicy(events=(RateLimit(3, timedelta(seconds=10)),),
                                          rest=(RateLimit(3, timedelta(seconds=10)),)))
    decisions = []
    for _ in range(3):
        decisions.append(model.check_event_limit("sub-1"))
        clock.advance(1)
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(d.allowed for d in decisions)
    clock.advance(2)  # t = 5 s
    refused = model.check_event_limit("sub-1")
    assert not refused.allowed
    assert refused.reset == T0 + timedelta(seconds=15)
    clock.advance(7)  # t = 12 s: the first window is over, the block is not
    assert not model.check_event_limit("sub-1").allowed
    clock.advance(3)  # t = 15 s
    again = model.check_event_limit("sub-1")
    assert again.allowed
    assert again.remaining == 2


def test_the_tightest_tier_is_reported_and_enforced(model: Signl4Model, clock: FakeClock) -> None:
    tiers = (RateLimit(5, timedelta(seconds=10)), RateLimit(6, timedelta(seconds=60)))
    model.set_rate_limits(RateLimitPolicy(events=tiers, rest=tiers))
    for _ in range(5):
        model.check_event_limit("sub-1")
    clock.advance(10)
    first = model.check_event_limit("sub-1")
    assert first.allowed
    assert (first.limit, first.remaining) == (6, 0)
    refused = model.check_event_limit("sub-1")
    assert not refused.allowed
    assert refused.reset == clock.now + timedelta(seconds=60)


def test_a_policy_needs_limits() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RateLimitPolicy(events=(), rest=(RateLimit(1, timedelta(seconds=1)),))


def test_plans_have_the_documented_limits() -> None:
    commercial, free = limits_for_plan("commercial"), limits_for_plan("free")
    assert [(t.limit, t.window.total_seconds()) for t in commercial.events] == [
        (150, 15), (600, 60), (36_000, 3_600), (864_000, 86_400)]
    assert [(t.limit, t.window.total_seconds()) for t in free.rest] == [(10, 15), (1_200, 3_600)]


def test_reset_forgets_everything(model: Signl4Model) -> None:
    raise_new(model, "INC1")
    model.reset()
    assert (model.alerts, model.teams, model.notifications()) == ({}, {}, [])
