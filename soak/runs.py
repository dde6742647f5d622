"""Watching a tick's sync runs until they end: started, terminal within the bound, failed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from models.sync import RunState, SyncAllResult
from soak.plan import Profile
from workflows.sync_all import SyncAllWorkflow

log = logging.getLogger("synchub.soak")


async def until_started(handle: WorkflowHandle[Any, SyncAllResult]) -> None:
    """Wait (at most 10 s) until the run has partitions going, so a kill lands mid-run."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            p = await handle.query(SyncAllWorkflow.progress, rpc_timeout=timedelta(seconds=2))
            if p.partitions.running or p.partitions.done:
                return
        await asyncio.sleep(0.05)


async def await_terminal(
    handles: list[WorkflowHandle[Any, SyncAllResult]],
    profile: Profile,
    violation: Callable[[str], None],
) -> bool:
    """Wait until every run is closed; return whether one had to be terminated.

    A run past the bound, or stalled (partitions pending, none running), is a violation
    and is terminated, so the soak can go on; ``violation`` is told why.
    """
    deadline = time.monotonic() + profile.run_bound_seconds
    stalled_since: dict[str, float] = {}
    pending = list(handles)
    tainted = False
    while pending:
        for h in list(pending):
            desc = await h.describe()
            if desc.status != WorkflowExecutionStatus.RUNNING:
                pending.remove(h)
                continue
            why = None
            try:
                p = await h.query(SyncAllWorkflow.progress, rpc_timeout=timedelta(seconds=2))
            except Exception:  # no worker yet (just killed): cannot tell, keep waiting
                p = None
            if p is not None and p.state == RunState.RUNNING:
                parts = p.partitions
                if parts.running == 0 and parts.pending > 0:
                    since = stalled_since.setdefault(h.id, time.monotonic())
                    if time.monotonic() - since > profile.stall_seconds:
                        why = (
                            f"run {h.id} hangs in RUNNING: {parts.done}/{parts.total} done, "
                            f"0 running, {parts.pending} pending, {parts.skipped} skipped, "
                            f"for {profile.stall_seconds:g} s"
                        )
                else:
                    stalled_since.pop(h.id, None)
            if why is None and time.monotonic() > deadline:
                shown = p.partitions.model_dump() if p is not None else "no progress answer"
                why = f"run {h.id} not terminal after {profile.run_bound_seconds:g} s: {shown}"
            if why is not None:
                violation(why)
                with contextlib.suppress(Exception):
                    await h.terminate("soak: not terminal within the bound")
                pending.remove(h)
                tainted = True
        if pending:
            await asyncio.sleep(0.2)
    return tainted


async def count_failed(
    handles: list[WorkflowHandle[Any, SyncAllResult]], echo: Callable[[str], object]
) -> int:
    """How many runs ended FAILED (or terminated); their reasons go to the log."""
    failed = 0
    for h in handles:
        try:
            res = await h.result()
        except Exception as exc:
            failed += 1
            log.warning("soak run %s did not complete: %s", h.id, exc)
            continue
        if res.state != RunState.COMPLETED:
            failed += 1
            reasons = "; ".join(f"{e.partition}: {e.error}" for e in res.failed[:3])
            echo(f"    run {h.id} {res.state.value}: {reasons}")
    return failed
