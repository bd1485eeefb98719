"""Cron triggers: which tick is due, missed ticks folded into one, and invalid expressions refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.errors import InvalidInput
from loopml.pipelines.triggers import due_cron, validate_cron


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_no_tick_is_due_before_the_next_one() -> None:
    assert due_cron("0 2 * * *", ms("2026-12-05T02:00:00"), ms("2026-12-06T01:59:59")) is None


def test_the_tick_itself_is_due() -> None:
    assert due_cron("0 2 * * *", ms("2026-12-05T02:00:00"), ms("2026-12-06T02:00:00")) == (ms("2026-12-06T02:00:00"), 1)


def test_ticks_missed_while_down_fold_into_one_for_the_latest() -> None:
    # Down from the 5th 02:00 run until the 9th 03:00: four nightly ticks passed, one run, for the 9th.
    assert due_cron("0 2 * * *", ms("2026-12-05T02:00:00"), ms("2026-12-09T03:00:00")) == (ms("2026-12-09T02:00:00"), 4)


def test_seconds_as_a_sixth_field() -> None:
    assert due_cron("* * * * * */10", ms("2026-12-05T02:00:00"), ms("2026-12-05T02:00:25")) == (
        ms("2026-12-05T02:00:20"),
        2,
    )


@pytest.mark.parametrize("expression", ["", "every day", "61 * * * *", "* * *", "0 2 * * * * *", "0 25 * * *"])
def test_invalid_cron_expressions_are_refused_with_an_example(expression: str) -> None:
    with pytest.raises(InvalidInput, match=r"invalid cron expression.*'0 2 \* \* \*'"):
        validate_cron(expression)


def test_a_valid_expression_is_normalised() -> None:
    assert validate_cron("  0  2 * *   * ") == "0 2 * * *"


@settings(max_examples=60, deadline=None)
@given(
    minute=st.integers(0, 59),
    start=st.integers(ms("2026-01-01T00:00:00"), ms("2027-01-01T00:00:00")),
    span=st.integers(0, 5 * 3600 * 1000),
)
def test_the_due_tick_is_the_latest_tick_in_the_window(minute: int, start: int, span: int) -> None:
    # An hourly cron at `minute`: the due tick is the last HH:minute in (start, start + span], counted exactly.
    found = due_cron(f"{minute} * * * *", start, start + span)
    hour = 3600 * 1000
    ticks = [
        t
        for t in range((start // hour - 1) * hour + minute * 60_000, start + span + 1, hour)
        if start < t <= start + span
    ]
    if not ticks:
        assert found is None
    else:
        assert found == (ticks[-1], len(ticks))
