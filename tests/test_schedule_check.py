"""Missed scheduled runs: due times of an interval spec against the actions that ran.

Time is an input here: every instant is given, no clock is read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.schedule_check import due_times, missed_times

H = timedelta(hours=1)
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_due_times_follow_the_interval_spec() -> None:
    assert due_times(H, timedelta(0), T0, T0 + 3 * H) == [T0 + H, T0 + 2 * H, T0 + 3 * H]
    # offset shifts the firing times; the window is (after, until]
    got = due_times(H, timedelta(minutes=7), T0, T0 + 2 * H)
    assert got == [T0 + timedelta(minutes=7), T0 + H + timedelta(minutes=7)]
    assert due_times(H, timedelta(0), T0, T0) == []


def test_missed_times_are_due_times_without_an_action() -> None:
    ran = [T0 + H, T0 + 3 * H + timedelta(milliseconds=300)]  # scheduled_at, a little late
    now = T0 + 4 * H + timedelta(minutes=5)
    assert missed_times(H, timedelta(0), ran, T0, now) == [T0 + 2 * H, T0 + 4 * H]
    # a due time inside the grace period is not missed yet
    assert missed_times(H, timedelta(0), ran, T0, T0 + 4 * H + timedelta(seconds=5)) == [T0 + 2 * H]
