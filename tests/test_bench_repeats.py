"""``make bench`` repeats the cheap phases and reports their medians (issue 11).

The rule and the median are plain functions, tested without services; a tiny benchmark
(40 shifts, 2 runs per phase) then runs against the session's real Temporal, tansu and
valkey with an in-process simulator, engine and per-record loop alike, and must show two
verified runs per phase, the median on top and a report that says so. A repeated first sync
that did not start from an emptied store, or whose store voided its cache, is caught as a
failure, not measured.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from bench import repeats
from bench import run as bench_run
from bench.report import render
from bench.sim import Simulator
from devstack.services import DevStack

ENGINE_DB = 2
"""Redis database of the engine in the tiny benchmark: flushed before every first sync."""
FORGET = bench_run.forget
"""The real reset (the tests below replace ``bench_run.forget``)."""
READ_IDLE = 0.6
"""Quiet seconds that end a phase's read: longer than a consumer's fetch long-poll (500 ms
by default), so a message produced while a fetch waits is not missed."""


def test_small_sizes_repeat_three_times_large_ones_once_unless_told() -> None:
    assert repeats.repeats_for(10_000, None) == 3
    assert repeats.repeats_for(repeats.SMALL_SIZE_MAX, None) == 3
    assert repeats.repeats_for(repeats.SMALL_SIZE_MAX + 1, None) == 1
    assert repeats.repeats_for(100_000, None) == 1
    assert repeats.repeats_for(100_000, 2) == 2
    assert repeats.repeats_for(10_000, 1) == 1


def test_repeats_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_run.parse_args([]).repeats is None
    assert bench_run.parse_args(["--repeats", "5"]).repeats == 5
    with pytest.raises(SystemExit) as exc:
        bench_run.parse_args(["--repeats", "0"])
    assert exc.value.code == 2
    assert "--repeats must be at least 1" in capsys.readouterr().err


def test_every_repetition_changes_other_shifts() -> None:
    ids = list(range(1_000, 2_000))
    picks = [repeats.changed_ids(ids, 10, rep) for rep in range(3)]
    assert all(len(p) == 10 and set(p) <= set(ids) for p in picks)
    assert len(set(picks[0]) | set(picks[1]) | set(picks[2])) == 30
    # one shift out of 40 (the tiny benchmark): still a different one each time
    small = list(range(40))
    assert len({repeats.changed_ids(small, 1, rep)[0] for rep in range(3)}) == 3


def _run(wall: float, cpu_us: float, tag: str) -> dict[str, Any]:
    return {
        "records": 1_000,
        "wall_seconds": wall,
        "records_per_second": round(1_000 / wall, 1),
        "cpu_seconds": cpu_us * 1_000 / 1e6,
        "cpu_us_per_record": cpu_us,
        "peak_rss_mib": 100.0 + wall,
        "tag": tag,
    }


def test_median_of_an_odd_count_is_the_middle_run_with_every_run_kept() -> None:
    runs = [_run(0.5, 10.0, "a"), _run(0.2, 30.0, "b"), _run(0.3, 20.0, "c")]
    out = repeats.median_run(runs)
    assert out["tag"] == "c"  # the other fields are the median-wall run's
    assert out["wall_seconds"] == 0.3
    assert out["records_per_second"] == round(1_000 / 0.3, 1)
    assert out["cpu_us_per_record"] == 20.0  # the median CPU, whichever run it was
    assert out["cpu_seconds"] == 0.02
    assert out["peak_rss_mib"] == 100.5  # the highest peak
    assert out["repeats"] == 3
    assert [r["tag"] for r in out["runs"]] == ["a", "b", "c"]
    assert "runs" not in out["runs"][0]


def test_median_of_an_even_count_averages_the_middle_two() -> None:
    out = repeats.median_run([_run(0.4, 10.0, "a"), _run(0.2, 30.0, "b")])
    assert out["tag"] == "b"
    assert out["wall_seconds"] == 0.3
    assert out["cpu_us_per_record"] == 20.0
    assert out["records_per_second"] == statistics.median([2_500.0, 5_000.0])
    single = repeats.median_run([_run(0.4, 10.0, "a")])
    assert single["wall_seconds"] == 0.4 and single["repeats"] == 1 and len(single["runs"]) == 1
    with pytest.raises(ValueError, match="at least one run"):
        repeats.median_run([])


@pytest_asyncio.fixture(loop_scope="session")
async def engine_db(redis_url: str) -> AsyncIterator[int]:
    """``ENGINE_DB``, emptied after the test: the engine's keys are per source, not per run,
    so a later test on the database would find this one's WIW state."""
    yield ENGINE_DB
    admin = aioredis.Redis.from_url(f"{redis_url.rstrip('/').rsplit('/', 1)[0]}/{ENGINE_DB}")
    try:
        await admin.flushdb()
    finally:
        await admin.aclose()


def _tiny(*, loop: bool, fixed_cost: int = 0) -> tuple[bench_run.Options, dict[str, Any]]:
    opts = bench_run.Options(
        sizes=(40,),
        days=1,
        loop=loop,
        repeats=2,
        fixed_cost_shifts=fixed_cost,
        sim_in_process=True,
    )
    return opts, bench_run.new_results(opts)


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_tiny_bench_runs_every_phase_twice_and_reports_medians(
    stack: DevStack, engine_db: int
) -> None:
    with Simulator(in_process=True) as sim:
        opts, results = _tiny(loop=True, fixed_cost=4)
        await bench_run.run_async(
            opts, stack, sim, results, first_db=engine_db, read_idle=READ_IDLE
        )
    size = results["sizes"]["40"]
    assert size["repeats"] == 2
    for side in ("engine", "loop"):
        for phase in ("first_sync", "no_change", "one_percent"):
            top = size[side][phase]
            runs = top["runs"]
            assert top["repeats"] == 2 and len(runs) == 2, (side, phase)
            walls = [r["wall_seconds"] for r in runs]
            assert top["wall_seconds"] == round(statistics.median(walls), 3)
            assert top["cpu_us_per_record"] == round(
                statistics.median(r["cpu_us_per_record"] for r in runs), 1
            )
        first = size[side]["first_sync"]["runs"]
        # each repetition a real first sync: everything published again from an emptied store
        assert [r["published"] for r in first] == [40, 40], side
        assert [r["upserted"] for r in first] == [40, 40], side
        assert first[1]["reset_keys"] > 0, side  # the second one had something to forget
        assert [r["published"] for r in size[side]["no_change"]["runs"]] == [0, 0], side
        assert [r["published"] for r in size[side]["one_percent"]["runs"]] == [1, 1], side
    assert [r["changed"] for r in size["engine"]["one_percent"]["runs"]] == [1, 1]
    # the fixed cost first: verified no-change runs of 4 shifts, split by thread
    fixed = results["fixed_cost"]
    assert fixed["shifts"] == 4
    runs = fixed["no_change"]["runs"]
    assert len(runs) == bench_run.FIXED_COST_REPEATS
    assert all(r["records"] == 4 and r["published"] == 0 and r["unchanged"] == 4 for r in runs)
    for run in runs:  # the groups add up to the run's CPU (each rounded: to 0.1 ms, to 1 ms)
        by_thread = run["cpu_ms_by_thread"]
        assert by_thread["event loop"] > 0 and by_thread["Temporal core"] > 0
        assert sum(by_thread.values()) == pytest.approx(1000 * run["cpu_seconds"], abs=1.0)

    results.update(memory={}, total_seconds=1.0, leftover_processes=[])
    text = render(results)
    assert "40 shifts: medians of 2 runs" in text
    assert "---- 40 shifts (medians of 2 runs) ----" in text
    assert "fixed cost, measured: a no-change run of 4 shifts over 1 partitions" in text
    assert "worker CPU by thread: event loop" in text


async def _keep_state(bench: bench_run.Bench) -> None:
    """A reset that forgets nothing."""


async def _stale_topic_id(bench: bench_run.Bench) -> None:
    """A reset that empties the store but leaves another topic incarnation recorded."""
    await FORGET(bench)
    admin = aioredis.Redis.from_url(bench.settings.redis.url)
    try:
        await admin.set("synchub:wiw:topic_id", "an-older-incarnation")
    finally:
        await admin.aclose()


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize(
    ("second_reset", "caught"),
    [
        (_keep_state, r"first-r2: .*0 distinct keys published, expected 40"),
        (_stale_topic_id, r"first-r2: skipped \[\], noticed \[.*recreated"),
    ],
    ids=["nothing-forgotten", "cache-voided"],
)
async def test_a_repeated_first_sync_that_is_not_a_fresh_one_fails_the_bench(
    stack: DevStack,
    engine_db: int,
    monkeypatch: pytest.MonkeyPatch,
    second_reset: Callable[[bench_run.Bench], Awaitable[None]],
    caught: str,
) -> None:
    calls: list[str] = []

    async def patched(bench: bench_run.Bench) -> dict[str, int]:
        calls.append(bench.tag)
        if len(calls) == 1:  # whatever an earlier test left in the database goes
            return await FORGET(bench)
        await second_reset(bench)
        return {"engine_keys": 0, "loop_keys": 0}

    monkeypatch.setattr(bench_run, "forget", patched)
    with Simulator(in_process=True) as sim:
        opts, results = _tiny(loop=False)
        with pytest.raises(bench_run.BenchFailure, match=caught):
            await bench_run.run_async(
                opts, stack, sim, results, first_db=engine_db, read_idle=READ_IDLE
            )
