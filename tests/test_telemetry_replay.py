"""Recorded histories replay with synchub's interceptors on, as a worker runs them.

The interceptors add Web UI metadata to child starts and set current details; neither may
change the command sequence, or running workflows would fail after an upgrade that turns
telemetry on.
"""

from __future__ import annotations

import pytest
from temporalio.worker import Replayer

from infra.interceptors import interceptors
from infra.temporal import DATA_CONVERTER
from tests.test_replay import HISTORIES, load
from worker import WORKFLOWS


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_with_interceptors(path) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=DATA_CONVERTER, interceptors=interceptors()
    )
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
