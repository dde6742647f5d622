"""The soak harness in short: a simulated day per source against the real stack.

``make soak`` runs a simulated month per source (``python -m soak``); this is its CI
version: the same harness, worker subprocess (SIGKILLed once, in the WIW soak), overlapping runs, faults and
mass moves, over a simulated day and a half with small data. Flatness over weeks is judged
by ``make soak`` only; here lookups are bounded per tick by what changed. One soak per source runs once per module;
each invariant is its own test, so a failure names the invariant it broke. The first tests
check that the checks themselves can fail.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.services import DevStack
from infra.consumer import Consumed
from soak.harness import START, Soak, SoakResult
from soak.invariants import LOOKUPS, Ledger, lookups_beyond_changes
from soak.plan import Truth
from soak.plans import PLANS, PROFILES
from soak.temu_plan import TemuOrdersPlan

CI_BUDGET_SECONDS = 150.0
"""Real seconds one source may take in the default suite before it stops early: about 40-60 s
on a quiet machine; the rest is room for test workers running in parallel on 2 cores."""


# -- the checks can fail ------------------------------------------------------------------------


def _msg(key: str, event: str, op: str, fp: str, marker: int | None) -> Consumed:
    env: dict[str, Any] = {"event_id": event, "op": op, "fingerprint": fp, "data": None}
    if marker is not None:
        env["data"] = {"m": marker}
    return Consumed("t", 0, 0, key, json.dumps(env).encode(), {"event_id": event})


def _ledger() -> Ledger:
    return Ledger(marker=lambda data: (data["m"],))


def test_ledger_flags_a_repeat_under_a_new_event_id_and_accepts_a_redelivery() -> None:
    ledger = _ledger()
    redelivered = [_msg("1", "e1", "upsert", "f1", 1), _msg("1", "e1", "upsert", "f1", 1)]
    assert ledger.add(redelivered) == []
    assert ledger.duplicates == 1  # same event_id: allowed, counted
    assert ledger.add([_msg("1", "e2", "upsert", "f2", 2)]) == []  # a real change
    [problem] = ledger.add([_msg("1", "e3", "upsert", "f2", 2)])
    assert "new event_id e3" in problem
    [clash] = ledger.add([_msg("1", "e1", "upsert", "f9", 9)])
    assert "event_id e1 carried" in clash


def test_ledger_finds_lost_changes_and_missing_deletes() -> None:
    ledger = _ledger()
    ledger.add([_msg("1", "e1", "upsert", "f1", 1), _msg("2", "e2", "upsert", "f2", 2)])
    truth = Truth({"1": (5,), "3": (3,)}, {"4": (4,)}, deleted={"2"}, live=2)
    lost = ledger.lost(truth)
    assert lost == [
        "1: last message has (1,), upstream has (5,)",
        "3: never published (upstream (3,))",
    ]
    assert ledger.undeleted(truth) == ["2: deleted upstream, last message is a upsert"]
    ledger.add([_msg("2", "e3", "delete", "-", None)])
    assert ledger.undeleted(truth) == []


def test_lookups_beyond_what_changed_are_flagged() -> None:
    assert lookups_beyond_changes(40, left=10, relocated=5) is None
    message = lookups_beyond_changes(400, left=10, relocated=5)
    assert message is not None and "400 point lookups" in message


def test_flatness_needs_two_periods_and_flags_growth() -> None:
    flat = [(d / 4, 10.0) for d in range(60)]
    assert LOOKUPS.check(flat, period=7) is None
    growing = [(d / 4, 10.0 + 5 * d) for d in range(60)]
    assert LOOKUPS.check(growing[:27], period=7) is None  # not two periods yet
    message = LOOKUPS.check(growing, period=7)
    assert message is not None and "grew from" in message


def test_temu_truth_holds_the_address_and_waits_for_what_the_list_hides() -> None:
    plan = TemuOrdersPlan(PROFILES["short"], START)
    plan.seed(random.Random(1))
    sn = next(s for s in plan.state.order_sns() if plan._shippable(s))
    order = {**(plan.state.order(sn) or {}), "shipping": plan.state.shipping(sn)}
    ledger = _ledger()
    ledger.marker = plan.marker
    ledger.add([_msg(sn, "e1", "upsert", "f1", None)])
    ledger.last[sn].marker = plan.marker(order)
    assert sn not in {p.split(":")[0] for p in ledger.lost(plan.truth(START + timedelta(days=1)))}
    plan.state.change_address(sn)  # the same order, a new address: a loss until published
    assert any(p.startswith(f"{sn}:") for p in ledger.lost(plan.truth(START + timedelta(days=1))))
    plan.state.set_knobs(list_lag_seconds=60)
    plan.state.change_address(sn)  # the list does not show it yet: judged at a later tick
    assert sn not in plan.truth(START + timedelta(days=1)).expected


# -- the short soak ---------------------------------------------------------------------------


def _soak(source: str, stack: DevStack, workdir: Path, db: int) -> SoakResult:
    """One short soak, on a thread of its own (its own event loop, not the session's)."""
    profile = PROFILES["short"]
    if source != "wiw":  # one SIGKILL (~20 s of heartbeat timeout) per suite is enough here
        profile = dataclasses.replace(profile, kills=0)
    plan = PLANS[source](profile, START)
    soak = Soak(plan, stack, workdir, redis_db=db, budget_seconds=CI_BUDGET_SECONDS, echo=print)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, soak.run()).result()


@pytest.fixture(scope="module")
def soaked(stack: DevStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Results of the short soak of every source, run lazily once per module."""
    done: dict[str, SoakResult] = {}
    workdir = tmp_path_factory.mktemp("soak")

    def get(source: str) -> SoakResult:
        if source not in done:
            done[source] = _soak(source, stack, workdir, db=10 + len(done))
        return done[source]

    yield {"get": get}


SOURCES = ["advoware", "wiw", "temu-orders"]
"""Soaked in the default suite (TEMU orders with its issue-10 knobs: ~32 s without a kill)."""


def _first(result: SoakResult, kind: str) -> str:
    found = result.violated(kind)
    return "" if found is None else f"{found} ({result.counts[found.kind]} ticks)"


def test_short_profile_is_a_simulated_day_or_two() -> None:
    short = PROFILES["short"]
    assert 1 <= short.days <= 2 and short.kills >= 1 and short.overlap_probability > 0
    assert timedelta(hours=short.tick_hours) < timedelta(days=short.days)
    assert short.big_partition > 0


@pytest.mark.soak
@pytest.mark.parametrize("source", SOURCES)
def test_every_run_is_terminal_within_its_bound(soaked: dict[str, Any], source: str) -> None:
    result = soaked["get"](source)
    assert result.violated("terminal") is None, _first(result, "terminal")


@pytest.mark.soak
@pytest.mark.parametrize("source", SOURCES)
def test_nothing_is_lost(soaked: dict[str, Any], source: str) -> None:
    result = soaked["get"](source)
    assert result.rows, result.stopped_early
    assert result.violated("lost") is None, _first(result, "lost")


@pytest.mark.soak
@pytest.mark.parametrize("source", SOURCES)
def test_every_published_deletion_has_a_delete(soaked: dict[str, Any], source: str) -> None:
    result = soaked["get"](source)
    assert result.violated("undeleted") is None, _first(result, "undeleted")


@pytest.mark.soak
@pytest.mark.parametrize("source", SOURCES)
def test_duplicates_only_with_an_equal_event_id(soaked: dict[str, Any], source: str) -> None:
    result = soaked["get"](source)
    assert result.messages > 0
    assert result.violated("duplicate") is None, _first(result, "duplicate")


@pytest.mark.soak
@pytest.mark.parametrize("source", SOURCES)
def test_lookups_are_bounded_by_what_changed(soaked: dict[str, Any], source: str) -> None:
    result = soaked["get"](source)
    assert result.violated("lookups") is None, _first(result, "lookups")


@pytest.mark.soak
@pytest.mark.parametrize("source", SOURCES)
def test_the_simulated_day_fits_the_budget(soaked: dict[str, Any], source: str) -> None:
    result = soaked["get"](source)
    assert result.stopped_early is None, result.stopped_early
    assert result.kills >= (1 if source == "wiw" else 0)
