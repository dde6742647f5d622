"""Operator CLI: run a sync now, watch it, steer it, manage schedules, start the dev stack.

Examples::

    python starter.py dev                       # the embedded default, everything local
    python starter.py run wiw --wait            # one sync now, progress until done
    python starter.py run wiw --param days_ahead=7
    python starter.py resync wiw --partition 2026-11-24   # republish, ignoring the cache
    python starter.py status <workflow-id>
    python starter.py stop|pause|resume <workflow-id>
    python starter.py schedules apply|list|check|pause|unpause|trigger [schedule-id]
    python starter.py watch wiw.shifts          # print messages of a topic
    python starter.py trace <workflow-id>       # span tree of a run, with durations
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from connectors import get_spec
from infra.observability import flush_traces, start_tracing, traces_path
from infra.schedule_check import check_schedules
from infra.schedules import apply_schedules, schedule_definitions
from infra.temporal import TemporalUnavailableError, connect
from infra.trace_view import trace_command
from models.errors import InvalidParamsError
from models.sync import Progress, RunState, SyncAllInput, SyncAllResult
from settings import Settings, SettingsError, load_settings
from workflows.options import SOURCE_ATTR, STATE_ATTR, sync_all_workflow_id
from workflows.sync_all import SyncAllWorkflow
from workflows.sync_partition import failure_message


class UsageError(Exception):
    """Bad command-line input; printed as is, exit code 2, before any work starts."""


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


def format_progress(p: Progress) -> str:
    """One status line."""
    parts, recs = p.partitions, p.records
    return (
        f"{p.source} {p.state.value}: partitions {parts.done}/{parts.total} done, "
        f"{parts.running} running, {parts.pending} pending, {parts.failed} failed, "
        f"{parts.skipped} skipped | records fetched {recs.fetched}, unchanged {recs.unchanged}, "
        f"upserted {recs.upserted}, deleted {recs.deleted}, dead-lettered {recs.dead_lettered}"
    )


def format_result(r: SyncAllResult) -> str:
    """Final summary, including why partitions failed."""
    lines = [
        format_progress(
            Progress(source=r.source, state=r.state, partitions=r.partitions, records=r.records)
        )
    ]
    lines.append(f"  pages {r.pages} ({r.unchanged_pages} proven unchanged by digest)")
    lines += [f"  failed {e.partition}: {e.error}" for e in r.failed]
    lines += [f"  notice: {n}" for n in r.notices]
    if r.records.republished:
        lines.append(f"  republished (cache void, same event ids): {r.records.republished}")
    if r.skipped:
        lines.append(f"  skipped (already running elsewhere): {', '.join(r.skipped)}")
    lines += [f"  warning: {w}" for w in r.warnings]
    return "\n".join(lines)


async def start_sync(
    client: Client,
    settings: Settings,
    source: str,
    params: dict[str, Any],
    partitions: list[str] | None,
    max_concurrent: int | None,
    workflow_id: str | None,
    resync: bool = False,
) -> WorkflowHandle[SyncAllWorkflow, SyncAllResult]:
    """Validate, then start a sync-all run (``resync``: ignoring the cache)."""
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
) -> int:
    """Print progress until the run ends; exit code 0 unless it failed.

    Temporal going away (a restart, a network blip) does not end the wait: the run goes on
    in Temporal regardless, so the CLI says it is reconnecting, keeps trying for
    ``reconnect_seconds`` and then carries on printing progress, or gives up with exit 1
    and the command that shows the run's state later.
    """
    last = ""
    lost: float | None = None
    while True:
        task = asyncio.ensure_future(handle.result())
        try:
            while not task.done():
                try:
                    line = format_progress(await handle.query(SyncAllWorkflow.progress))
                except RPCError:
                    line = last
                if line and line != last:
                    print(line, flush=True)
                    last = line
                await asyncio.wait([task], timeout=every)
            result = task.result()
        except WorkflowFailureError as exc:
            print(f"run {handle.id} failed: {failure_message(exc)}", file=sys.stderr)
            return 1
        except RPCError as exc:
            if exc.status not in _UNREACHABLE:
                raise
            now = time.monotonic()
            if lost is None:
                lost = now
                print(
                    f"lost Temporal ({exc.message}); reconnecting for up to "
                    f"{reconnect_seconds:.0f} s (--reconnect-timeout)",
                    flush=True,
                )
            if now - lost > reconnect_seconds:
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
            print(
                f"reconnected to Temporal after {time.monotonic() - lost:.0f} s; "
                f"still waiting for {handle.id}",
                flush=True,
            )
            lost = None
            continue
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
    )
    print(f"started {handle.id} (run {handle.result_run_id})")
    print(f"  progress: python starter.py status {handle.id}")
    return await wait_for(handle, reconnect_seconds=args.reconnect_timeout) if args.wait else 0


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """``status``: workflow status and its progress query."""
    client = await connect(settings.temporal)
    handle = client.get_workflow_handle(args.workflow_id)
    desc = await handle.describe()
    print(f"{args.workflow_id}: {desc.status.name if desc.status else 'UNKNOWN'}")
    try:
        progress = await handle.query("progress", result_type=Progress)
        print(format_progress(progress))
        if progress.skipped:
            print(f"  skipped (already running elsewhere): {', '.join(progress.skipped)}")
        for warning in progress.warnings:
            print(f"  warning: {warning}")
    except RPCError as exc:
        print(f"  (no progress: {exc.message})")
    return 0


async def cmd_signal(args: argparse.Namespace, settings: Settings) -> int:
    """``stop``/``pause``/``resume``: send the signal of that name."""
    client = await connect(settings.temporal)
    await client.get_workflow_handle(args.workflow_id).signal(args.command)
    print(f"sent {args.command} to {args.workflow_id}")
    return 0


async def cmd_schedules(args: argparse.Namespace, settings: Settings) -> int:
    """``schedules``: apply synchub's schedules or act on one."""
    client = await connect(settings.temporal)
    if args.action == "apply":
        from worker import build_connectors

        sources = list(build_connectors(settings)[0])
        for sid in await apply_schedules(client, settings, schedule_definitions(settings, sources)):
            print(f"applied {sid}")
        return 0
    if args.action == "check":  # runs due by each schedule's spec that never ran
        reports = await check_schedules(client)
        for r in reports:
            print(r.line())
        return 1 if any(r.missed for r in reports) else 0
    if args.action == "list":
        async for s in await client.list_schedules():
            desc = await client.get_schedule_handle(s.id).describe()
            state = "paused" if desc.schedule.state.paused else "active"
            print(f"{s.id}\t{state}\t{desc.schedule.state.note or ''}")
        return 0
    handle = client.get_schedule_handle(args.schedule_id)
    if args.action == "pause":
        await handle.pause(note="paused from starter.py")
    elif args.action == "unpause":
        await handle.unpause(note="unpaused from starter.py")
    elif args.action == "trigger":
        await handle.trigger()
    done = {"pause": "paused", "unpause": "unpaused", "trigger": "triggered"}[args.action]
    print(f"{done} {args.schedule_id}")
    return 0


def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    """``watch``: print a topic's messages until Ctrl-C."""
    from infra.consumer import tail

    for msg in tail(settings.kafka.brokers, args.topic, from_beginning=not args.new, follow=True):
        print(
            f"{msg.key}\t{msg.headers.get('op', '')}\t{msg.headers.get('event_id', '')}\t"
            f"{msg.value[:200]!r}",
            flush=True,
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line; ``--help`` on each subcommand documents it."""
    parser = argparse.ArgumentParser(prog="starter.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "dev",
        help="start the embedded default: Temporal, Kafka, Redis, simulators, "
        "worker and schedules; Ctrl-C stops everything",
    )
    run = sub.add_parser("run", help="start a sync of one source now")
    resync = sub.add_parser(
        "resync",
        help="publish a source's current state again, ignoring the cache "
        "(same event ids; e.g. after a topic lost messages)",
    )
    for cmd in (run, resync):  # resync is a run that ignores the cache: same arguments
        cmd.add_argument("source", help="registered source, e.g. wiw")
        cmd.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="connector parameter (repeatable)",
        )
        cmd.add_argument(
            "--partition",
            action="append",
            default=[],
            help="sync only this partition (repeatable)",
        )
        cmd.add_argument(
            "--max-concurrent", type=int, help="partitions at once (default from settings)"
        )
        cmd.add_argument("--id", help="workflow id (default syncall/<source>/<timestamp>)")
        cmd.add_argument("--wait", action="store_true", help="print progress until done")
        cmd.add_argument(
            "--reconnect-timeout",
            type=float,
            default=RECONNECT_SECONDS,
            metavar="SECONDS",
            help="with --wait: how long to keep reconnecting when Temporal cannot be reached "
            f"(default {RECONNECT_SECONDS:.0f})",
        )
    for name, text in (
        ("status", "state and progress of a run"),
        ("stop", "stop a run"),
        ("pause", "pause a run"),
        ("resume", "resume a paused run"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("workflow_id")
    sch = sub.add_parser("schedules", help="manage Temporal Schedules")
    sch.add_argument("action", choices=["apply", "list", "check", "pause", "unpause", "trigger"])
    sch.add_argument("schedule_id", nargs="?")
    trace = sub.add_parser("trace", help="print the span tree of a run, with durations")
    trace.add_argument("workflow_id")
    watch = sub.add_parser("watch", help="print the messages of a Kafka topic")
    watch.add_argument("topic")
    watch.add_argument("--new", action="store_true", help="only messages arriving from now on")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, validate settings and arguments, then run the command."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "dev":
            from infra.devrun import run_dev

            return run_dev(settings)
        if args.command == "watch":
            return cmd_watch(args, settings)
        if args.command == "trace":
            return trace_command(args.workflow_id, traces_path(settings))
        if settings.telemetry.tracing and args.command in ("run", "resync", "schedules"):
            start_tracing("synchub-starter", settings)  # the trace's root span
        if args.command in ("run", "resync"):
            get_spec(args.source).validate_params(parse_params(args.param))
            if args.max_concurrent is not None and args.max_concurrent < 1:
                raise UsageError("--max-concurrent must be at least 1")
            if args.reconnect_timeout < 0:
                raise UsageError("--reconnect-timeout must be 0 or more seconds")
        needs_id = args.command == "schedules" and args.action not in ("apply", "list", "check")
        if needs_id and not args.schedule_id:
            raise UsageError(f"schedules {args.action} needs a schedule id (see: schedules list)")
        handler = {
            "run": cmd_run,
            "resync": cmd_run,
            "status": cmd_status,
            "stop": cmd_signal,
            "pause": cmd_signal,
            "resume": cmd_signal,
            "schedules": cmd_schedules,
        }[args.command]
        return asyncio.run(handler(args, settings))
    except (SettingsError, UsageError, InvalidParamsError) as exc:
        print(f"starter.py: {exc}", file=sys.stderr)
        return 2
    except TemporalUnavailableError as exc:
        print(f"starter.py: {exc}", file=sys.stderr)
        return 1
    except RPCError as exc:
        print(f"starter.py: Temporal said: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    code = main()
    # Everything is done and closed. Skip interpreter finalization: the Temporal client's
    # Rust threads can abort it ("Fatal Python error: PyGILState_Release", SIGABRT),
    # turning a finished command's exit code into -6 (temporalio/sdk-python#300).
    flush_traces()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
