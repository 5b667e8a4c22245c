"""WritePacer on a fake clock: tags leave the reserve to reverse sync, rows past the budget are put off (spread over
the coming windows), a close takes an incident and a comment write, and nothing is taken for a row put off."""

from __future__ import annotations

from fake_clock import FakeClock
from sentinel_signl4.clients.ratelimit import SlidingWindowLimiter
from sentinel_signl4.domain import ActionKind
from sentinel_signl4.domain.actions import AddComment, TagIncident, UpdateIncident, UpdateOp
from sentinel_signl4.domain.signl4_events import Signl4Event
from sentinel_signl4.engine.pacing import WritePacer
from sentinel_signl4.store import OutboxAction


def pacer(clock: FakeClock, *, incidents: int = 10, comments: int = 10, reserve: int = 4) -> WritePacer:
    def window(limit: int) -> SlidingWindowLimiter:
        return SlidingWindowLimiter(limit, 60.0, clock=clock.monotonic, wall_clock=clock.epoch, sleep=clock.sleep)
    return WritePacer(window(incidents), window(comments), reserve=reserve, clock=clock.monotonic)


def row(kind: ActionKind, payload: dict[str, object], n: int = 0) -> OutboxAction:
    return OutboxAction(key=f"c:{kind.value}:{n}", connector="c", kind=kind, incident_id=f"i{n}", payload=payload)


def tag(n: int) -> OutboxAction:
    return row(ActionKind.TAG_INCIDENT, TagIncident("SIGNL4").to_record(), n)


def update(op: UpdateOp, n: int = 0) -> OutboxAction:
    event = Signl4Event.from_record({"event_id": f"e{n}", "kind": "acknowledged", "external_id": f"x{n}"})
    return row(ActionKind.UPDATE_INCIDENT, UpdateIncident(op, event).to_record(), n)


def test_tags_leave_the_reserve_to_acknowledgements() -> None:
    clock = FakeClock()
    p = pacer(clock)
    admitted = [p.admit(tag(n)).wait == 0 for n in range(10)]
    assert admitted == [True] * 6 + [False] * 4  # 10 - reserve 4
    assert all(p.admit(update(UpdateOp.ACKNOWLEDGE, n)).wait == 0 for n in range(4))  # the reserve
    put_off = p.admit(update(UpdateOp.ACKNOWLEDGE, 9))
    assert put_off.wait > 0 and put_off.budget == "incidents"


def test_rows_put_off_are_spread_over_the_coming_windows() -> None:
    clock = FakeClock()
    p = pacer(clock)
    for n in range(6):
        assert p.admit(tag(n)).wait == 0
    clock.advance(10)
    waits = [p.admit(tag(n)).wait for n in range(6, 6 + 13)]
    assert waits[:6] == [50.0] * 6  # the first window's grants leave in 50 s: six tags fit then
    assert waits[6:12] == [110.0] * 6  # the next six one window later
    assert waits[12] == 170.0
    # Acknowledgements queue apart from tags: one put off now waits for the budget, not behind the tag backlog.
    for n in range(4):
        assert p.admit(update(UpdateOp.ACKNOWLEDGE, n)).wait == 0
    assert p.admit(update(UpdateOp.ACKNOWLEDGE, 5)).wait == 50.0


def test_a_close_needs_an_incident_and_a_comment_write_and_takes_nothing_when_put_off() -> None:
    clock = FakeClock()
    p = pacer(clock, comments=1)
    assert p.admit(row(ActionKind.ADD_COMMENT, AddComment("c1", "m").to_record())).wait == 0
    closing = p.admit(update(UpdateOp.CLOSE))
    assert closing.wait > 0 and closing.budget == "comments"
    # The close was put off whole: its incident write was not taken, all ten are still there.
    assert all(p.admit(update(UpdateOp.ACKNOWLEDGE, n)).wait == 0 for n in range(10))


def test_rows_that_write_nothing_to_the_source_are_not_paced() -> None:
    clock = FakeClock()
    p = pacer(clock, incidents=2, reserve=1)
    for kind in (ActionKind.RAISE_SIGNL, ActionKind.RESOLVE_SIGNL, ActionKind.ANNOTATE_SIGNL):
        assert all(p.admit(row(kind, {}, n)).wait == 0 for n in range(5))
    assert p.admit(update(UpdateOp.ACKNOWLEDGE)).wait == 0
    assert p.admit(update(UpdateOp.ACKNOWLEDGE, 1)).wait == 0
