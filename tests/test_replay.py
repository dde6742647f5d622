"""Replay recorded histories against today's workflow code (issue 9, case 6: upgrades).

A change to workflow code that running workflows could not replay (another command
sequence, a moved continue-as-new threshold, a removed signal) fails here, before it
reaches a worker with runs in flight. The histories come from real runs recorded by
``python -m tests.replay.record``; re-record after an *intentional* workflow change.
No server is needed: the ``Replayer`` runs the workflow code over each history with the
worker's workflows and the worker's data converter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from infra.temporal import DATA_CONVERTER
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "replay" / "histories").glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay/{path.stem}", path.read_text())


def workflow_type(path: Path) -> str:
    first = json.loads(path.read_text())["events"][0]
    return str(first["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])


def test_every_workflow_type_has_a_recorded_history() -> None:
    recorded = {workflow_type(p) for p in HISTORIES}
    registered = {w.__temporal_workflow_definition.name for w in WORKFLOWS}  # type: ignore[attr-defined]
    assert registered <= recorded, f"record histories for {sorted(registered - recorded)}"
    assert any("CONTINUED_AS_NEW" in p.read_text() for p in HISTORIES)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, (
        f"{path.name} no longer replays: {result.replay_failure}. If the workflow change is "
        "intended, running workflows of the old code must finish first (or use "
        "workflow.patched); then re-record with: python -m tests.replay.record"
    )
