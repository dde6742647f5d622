"""Where an incremental pass starts: days_back, else the checkpoint minus the overlap, else the first days."""

from __future__ import annotations

from connectors.overlap import pass_start

NOW = 1_800_000_000


def test_checkpoint_minus_overlap() -> None:
    start = pass_start(NOW, NOW - 3_600, days_back=None, overlap_seconds=600, first_pass_days=7)
    assert start == NOW - 3_600 - 600


def test_days_back_wins_over_the_checkpoint() -> None:
    start = pass_start(NOW, NOW - 60, days_back=2, overlap_seconds=600, first_pass_days=7)
    assert start == NOW - 2 * 86_400


def test_first_pass_reads_its_first_days() -> None:
    start = pass_start(NOW, None, days_back=None, overlap_seconds=600, first_pass_days=7)
    assert start == NOW - 7 * 86_400
