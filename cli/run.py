"""``run`` / ``resync``: validate, start a sync-all run, optionally wait with progress."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from cli.errors import UsageError
from cli.format import format_result
from cli.progress import PlainView, ProgressView, view_for_stdout
from connectors import get_spec
from infra.temporal import connect
from models.failures import failure_message
from models.sync import Progress, RunState, SyncAllInput, SyncAllResult
from settings import Settings
from workflows.options import SOURCE_ATTR, STATE_ATTR, sync_all_workflow_id
from workflows.sync_all import SyncAllWorkflow


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; values are JSON when they parse (``2``, ``true``), else strings."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {pair!r}: expected key=value, e.g. --param days_ahead=7")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


async def start_sync(
    client: Client,
    settings: Settings,
    source: str,
    params: dict[str, Any],
    partitions: list[str] | None,
    max_concurrent: int | None,
    workflow_id: str | None,
    resync: bool = False,
    dry_run: bool = False,
) -> WorkflowHandle[SyncAllWorkflow, SyncAllResult]:
    """Validate, then start a sync-all run.

    ``resync`` ignores the cache; ``dry_run`` publishes and commits nothing.
    """
    checked = get_spec(source).validate_params(params)
    wid = workflow_id or sync_all_workflow_id(source, datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f"))
    return await client.start_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(
            source=source,
            params=checked,
            partitions=partitions,
            max_concurrent=max_concurrent or settings.sync.max_concurrent,
            resync=resync,
            dry_run=dry_run,
        ),
        id=wid,
        task_queue=settings.temporal.task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(SOURCE_ATTR, source),
                SearchAttributePair(STATE_ATTR, RunState.RUNNING.value),
            ]
        ),
    )


RECONNECT_SECONDS = 300.0
"""Default of ``run --reconnect-timeout``: how long ``--wait`` keeps trying to reach a
Temporal that went away (a dev-server restart takes seconds, a cluster upgrade minutes)."""

_UNREACHABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNKNOWN)
"""RPC failures that mean "Temporal cannot be reached right now", not "you asked wrong"."""


async def wait_for(
    handle: WorkflowHandle[Any, SyncAllResult],
    every: float = 2.0,
    reconnect_seconds: float = RECONNECT_SECONDS,
    view: ProgressView | None = None,
) -> int:
    """Show progress until the run ends, then the summary; exit code 0 unless it failed.

    Temporal going away (a restart, a network blip) does not end the wait: the run goes on
    in Temporal regardless, so the CLI says it is reconnecting, keeps trying for
    ``reconnect_seconds`` and then carries on showing progress, or gives up with exit 1
    and the command that shows the run's state later. ``view`` draws the progress (plain
    lines by default, see ``cli.progress``).
    """
    shown = view or PlainView()
    try:
        return await _wait(handle, every, reconnect_seconds, shown)
    finally:
        shown.close()


async def _wait(
    handle: WorkflowHandle[Any, SyncAllResult],
    every: float,
    reconnect_seconds: float,
    shown: ProgressView,
) -> int:
    lost: float | None = None
    while True:
        task = asyncio.ensure_future(handle.result())
        try:
            while not task.done():
                try:
                    shown.update(await handle.query(SyncAllWorkflow.progress))
                except RPCError:
                    pass  # the next poll tries again; losing Temporal shows in the result
                await asyncio.wait([task], timeout=every)
            result = task.result()
        except WorkflowFailureError as exc:
            shown.close()
            print(f"run {handle.id} failed: {failure_message(exc)}", file=sys.stderr)
            return 1
        except RPCError as exc:
            if exc.status not in _UNREACHABLE:
                raise
            now = time.monotonic()
            if lost is None:
                lost = now
                shown.note(
                    f"lost Temporal ({exc.message}); reconnecting for up to "
                    f"{reconnect_seconds:.0f} s (--reconnect-timeout)"
                )
            if now - lost > reconnect_seconds:
                shown.close()
                print(
                    f"run {handle.id}: Temporal unreachable for {now - lost:.0f} s, stopped "
                    f"waiting (the run itself goes on); later: python starter.py status "
                    f"{handle.id}",
                    file=sys.stderr,
                )
                return 1
            await asyncio.sleep(1.0)
            try:
                await handle.describe()
            except RPCError as again:
                if again.status not in _UNREACHABLE:
                    raise
                continue
            shown.note(
                f"reconnected to Temporal after {time.monotonic() - lost:.0f} s; "
                f"still waiting for {handle.id}"
            )
            lost = None
            continue
        shown.close(
            Progress(
                source=result.source,
                state=result.state,
                partitions=result.partitions,
                records=result.records,
                errors=result.failed,
            )
        )
        print(format_result(result))
        return 0 if result.state in (RunState.COMPLETED, RunState.STOPPED) else 1


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """``run`` / ``resync``: start a sync now, optionally waiting for it."""
    params = parse_params(args.param)
    client = await connect(settings.temporal)
    handle = await start_sync(
        client,
        settings,
        args.source,
        params,
        args.partition or None,
        args.max_concurrent,
        args.id,
        resync=args.command == "resync",
        dry_run=getattr(args, "dry_run", False),
    )
    print(f"started {handle.id} (run {handle.result_run_id})")
    print(f"  progress: python starter.py status {handle.id}")
    if not args.wait:
        return 0
    return await wait_for(handle, reconnect_seconds=args.reconnect_timeout, view=view_for_stdout())
