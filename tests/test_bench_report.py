"""The bench report splits a run's CPU into a fixed part and a part per record."""

from __future__ import annotations

from typing import Any

from bench.report import _marginal


def _size(first_cpu: float, same_cpu: float) -> dict[str, Any]:
    return {
        "engine": {
            "first_sync": {"cpu_seconds": first_cpu},
            "no_change": {"cpu_seconds": same_cpu},
        }
    }


def test_cpu_beyond_the_fixed_cost_comes_from_the_smallest_and_largest_size() -> None:
    # 10k: 80 ms fixed + 45 us x 10k; 100k: the same fixed cost + 45 us x 100k
    results = {
        "sizes": {
            "100000": _size(0.080 + 4.5, 0.060 + 0.2),
            "10000": _size(0.080 + 0.45, 0.060 + 0.02),
        }
    }
    (line,) = _marginal(results)
    assert "from 10,000 to 100,000 shifts" in line
    assert "45.0 us per new record" in line and "2.0 us per unchanged record" in line
    assert "80 ms (new)" in line and "60 ms (unchanged)" in line


def test_one_size_has_no_split() -> None:
    assert _marginal({"sizes": {"10000": _size(0.5, 0.1)}}) == []


def test_a_fixed_cost_below_zero_is_shown_as_about_zero() -> None:
    # the large size cost a little more per new record than the small one: noise
    results = {"sizes": {"10000": _size(0.45, 0.08), "100000": _size(4.7, 0.25)}}
    (line,) = _marginal(results)
    assert "~0 ms (new)" in line and "61 ms (unchanged)" in line
