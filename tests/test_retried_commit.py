"""Run totals count what was published, also when a page's commit reply was lost (issue 9).

A page's publish and commit went through, but the commit's reply never arrived (a Redis
reply timeout, a worker killed right after): the activity fails and its retry finds the
page committed. It used to count those records "unchanged", so the run reported fewer
upserts than it had published (seen: 47 upserted, 115 published). Real services and the
WIW simulator over HTTP; only the reply is lost: the real commit runs, then an error is
raised as if the connection had dropped before the answer.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
import pytest_asyncio
import redis.exceptions
from temporalio.client import Client

from infra.change_store import ChangeStore, Commit
from models.clock import ManualClock
from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import Settings
from simulators.server import ThreadedServer
from simulators.wiw import WiwState
from tests.clocks import default_clock_at
from tests.helpers import Engine, read, running_engine, served_wiw
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
REDIS_DB = 9
START = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    with default_clock_at(START) as manual:
        yield manual


@pytest.fixture
def wiw_sim() -> Iterator[tuple[WiwState, ThreadedServer]]:
    with served_wiw() as served:
        yield served


@pytest_asyncio.fixture(loop_scope="session")
async def wiw(
    wiw_sim, temporal_client: Client, settings_for: Callable[..., Settings]
) -> AsyncIterator[Engine]:
    settings = settings_for(
        redis_db=REDIS_DB,
        wiw_url=wiw_sim[1].url,
        days_ahead=1,
        days_prior=0,
    )
    async with running_engine(temporal_client, settings) as eng:
        yield eng


def lose_replies(monkeypatch: pytest.MonkeyPatch, times: int, when: str) -> list[Commit]:
    """Let the next ``times`` commits that write versions run, then fail as if their reply
    was lost. ``when`` = "after": the whole commit ran; "midway": only its first round trip
    of versions ran (a worker killed between two round trips)."""
    real = ChangeStore.commit
    lost: list[Commit] = []

    async def commit(self, source, partition, run_token, change: Commit) -> None:  # type: ignore[no-untyped-def]
        if len(lost) >= times or not change.set_versions:
            return await real(self, source, partition, run_token, change)
        lost.append(change)
        if when == "midway":
            first = dict(list(change.set_versions.items())[:1])
            part = dataclasses.replace(
                change, set_versions=first, set_fp={}, drop_fp=[], seen=[], page=None
            )
            await real(self, source, partition, run_token, part)
        else:
            await real(self, source, partition, run_token, change)
        raise redis.exceptions.TimeoutError("Timeout reading from socket (test: reply lost)")

    monkeypatch.setattr(ChangeStore, "commit", commit)
    return lost


async def run(eng: Engine) -> SyncAllResult:
    result = await eng.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="wiw"),
        id=f"syncall/wiw/lost-reply-{uuid.uuid4().hex[:8]}",
        task_queue=eng.settings.temporal.task_queue,
    )
    assert result.state == RunState.COMPLETED, result
    return result


@pytest.mark.parametrize("when", ["after", "midway"])
async def test_totals_count_a_page_whose_commit_reply_was_lost(
    wiw_sim, wiw: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    state, _ = wiw_sim
    await read(wiw.topic, idle=0.5)  # what earlier tests left
    today = clock.now().date()
    ids = state.seed(115, days=[today], seed=41)
    lost = lose_replies(monkeypatch, times=1, when=when)
    result = await run(wiw)
    assert len(lost) == 1  # the page's commit ran and its reply was lost once
    msgs = await read(wiw.topic, expect=115)
    msgs += await read(wiw.topic, idle=1.0)
    published = {m.key for m in msgs}
    assert published == {str(i) for i in ids}
    assert result.records.upserted == len(published) == 115, result.records
    assert result.records.unchanged == 0 and result.unchanged_pages == 0, result

    # the next run changes nothing and says so: the tally belongs to its own pass
    monkeypatch.undo()
    again = await run(wiw)
    assert again.records.upserted == 0 and again.records.unchanged == 115, again.records


async def test_totals_count_a_finish_chunk_whose_commit_reply_was_lost(
    wiw_sim, wiw: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for the lookups of ``finish_partition``: the retried attempt finds nothing
    left to resolve, and the run still counts what the lost chunk published."""
    state, _ = wiw_sim
    await read(wiw.topic, idle=0.5)
    today = clock.now().date()
    ids = state.seed(115, days=[today], seed=43)
    await run(wiw)
    await read(wiw.topic, expect=115)
    for shift_id in ids:  # out of the window: found by the lookups, published from there
        state.move(shift_id, datetime.combine(today + timedelta(days=60), time(9), UTC))
    lost = lose_replies(monkeypatch, times=1, when="after")
    result = await run(wiw)
    assert len(lost) == 1 and len(lost[0].set_versions) == 115
    msgs = await read(wiw.topic, expect=115)
    msgs += await read(wiw.topic, idle=1.0)
    assert sorted(m.key for m in msgs) == sorted(str(i) for i in ids)
    assert result.records.upserted == 115, result.records
