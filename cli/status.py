"""``status`` and the run signals ``stop`` / ``pause`` / ``resume``."""

from __future__ import annotations

import argparse

from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from cli.format import format_progress, format_result
from infra.temporal import connect
from models.failures import failure_message
from models.sync import Progress, RunState, SyncAllResult
from settings import Settings

_GOOD_ENDINGS = (RunState.COMPLETED, RunState.STOPPED)
"""Run states that are not failures (a stopped run did what the operator asked)."""

_OPEN = (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW)


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """``status``: the workflow's state and progress; exit 1 when it failed, saying why.

    A finished sync-all run shows its result (with each failed partition's reason); a
    workflow that failed, was terminated, cancelled or timed out shows Temporal's reason.
    """
    client = await connect(settings.temporal)
    handle = client.get_workflow_handle(args.workflow_id)
    desc = await handle.describe()
    status = desc.status
    print(f"{args.workflow_id}: {status.name if status else 'UNKNOWN'}")
    if status == WorkflowExecutionStatus.COMPLETED and desc.workflow_type == "SyncAllWorkflow":
        typed = client.get_workflow_handle(args.workflow_id, result_type=SyncAllResult)
        result = await typed.result()
        print(format_result(result))
        return 0 if result.state in _GOOD_ENDINGS else 1
    progress = await _progress(handle)
    if status in _OPEN or status == WorkflowExecutionStatus.COMPLETED:
        return 1 if progress is not None and progress.state == RunState.FAILED else 0
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        print(f"  reason: {failure_message(exc)}")
    return 1


async def _progress(handle: WorkflowHandle) -> Progress | None:  # type: ignore[type-arg]
    """Print the progress query's answer (also answered by closed runs), if there is one."""
    try:
        progress = await handle.query("progress", result_type=Progress)
    except RPCError as exc:
        print(f"  (no progress: {exc.message})")
        return None
    print(format_progress(progress))
    for error in progress.errors:
        print(f"  failed {error.partition}: {error.error}")
    if progress.skipped:
        print(f"  skipped (already running elsewhere): {', '.join(progress.skipped)}")
    for warning in progress.warnings:
        print(f"  warning: {warning}")
    return progress


async def cmd_signal(args: argparse.Namespace, settings: Settings) -> int:
    """``stop``/``pause``/``resume``: send the signal of that name."""
    client = await connect(settings.temporal)
    await client.get_workflow_handle(args.workflow_id).signal(args.command)
    print(f"sent {args.command} to {args.workflow_id}")
    return 0
