"""Where each connector makes its first cycle: many connectors started together are spread over their interval
(not all at second 0, which would keep them polling in lockstep), a few start at once, and the point is stable."""

from __future__ import annotations

from sentinel_signl4.engine.supervisor import STARTS_PER_SECOND, start_offset


def test_a_thousand_connectors_are_spread_evenly_over_one_interval() -> None:
    offsets = [start_offset(f"c{n:04d}", 30.0, 1000) for n in range(1000)]
    assert all(0.0 <= o < 30.0 for o in offsets)
    per_tenth = [sum(1 for o in offsets if k * 3.0 <= o < (k + 1) * 3.0) for k in range(10)]
    assert min(per_tenth) > 60, per_tenth  # about 100 per tenth of the interval


def test_a_few_connectors_start_within_a_fraction_of_a_second_whatever_the_interval() -> None:
    assert all(start_offset(name, 3600.0, 6) < 6 / STARTS_PER_SECOND for name in ("a", "b", "c", "d", "e", "f"))
    assert start_offset("alone", 30.0, 1) < 1 / STARTS_PER_SECOND


def test_the_offset_is_the_same_in_every_process() -> None:
    # Fixed values: a hash of the name, not Python's per-process salted hash().
    assert round(start_offset("contoso", 30.0, 1000), 6) == 5.541809
    assert round(start_offset("fabrikam", 30.0, 1000), 6) == 19.735859
