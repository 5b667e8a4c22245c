"""``describe_error``: the causes inside (nested) exception groups, never the wrapper's own text."""

from __future__ import annotations

from sentinel_signl4.engine.failures import describe_error
from sentinel_signl4.errors import RemoteError


def test_nested_groups_are_flattened_to_their_causes_without_repeats() -> None:
    group = ExceptionGroup("unhandled errors in a TaskGroup", [
        ValueError("bad op"), ExceptionGroup("inner", [KeyError("k"), ValueError("bad op")])])
    assert describe_error(group) == "ValueError: bad op; KeyError: 'k'"


def test_a_plain_error_and_a_remote_error_read_as_before() -> None:
    assert describe_error(RuntimeError("boom")) == "RuntimeError: boom"
    assert describe_error(TimeoutError()) == "TimeoutError"
    remote = RemoteError("SIGNL4 answered 400", status=400)
    assert describe_error(ExceptionGroup("g", [remote])) == "RemoteError: SIGNL4 answered 400"


def test_many_causes_are_counted_not_all_spelled_out() -> None:
    group = ExceptionGroup("g", [ValueError(str(n)) for n in range(5)])
    assert describe_error(group) == "ValueError: 0; ValueError: 1; ValueError: 2; and 2 more"
