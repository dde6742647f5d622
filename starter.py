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
    python starter.py codec-server --cors-origin https://temporal-ui.example
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from temporalio.service import RPCError

from cli.codec import cmd_codec_server
from cli.errors import UsageError
from cli.format import format_progress, format_result
from cli.run import RECONNECT_SECONDS, cmd_run, parse_params, start_sync, wait_for
from cli.schedules import cmd_schedules
from cli.status import cmd_signal, cmd_status
from cli.watch import cmd_watch
from connectors import REGISTRY, get_spec
from infra.codec import CodecKeyError
from infra.kafka_reach import KafkaUnavailableError, UnknownTopicError
from infra.observability import flush_traces, start_tracing, traces_path
from infra.temporal import TemporalUnavailableError
from infra.trace_view import trace_command
from models.errors import InvalidParamsError
from settings import SettingsError, load_settings

__all__ = [
    "RECONNECT_SECONDS",
    "UsageError",
    "build_parser",
    "format_progress",
    "format_result",
    "main",
    "parse_params",
    "start_sync",
    "wait_for",
]


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
        cmd.add_argument("source", help=f"registered source: {', '.join(REGISTRY)}")
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
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="fetch, diff and look up as usual, but publish nothing and commit nothing; "
        "report what would be upserted, deleted and dead-lettered",
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
    watch.add_argument(
        "--raw", action="store_true", help="show values as bytes instead of decoded JSON"
    )
    codec = sub.add_parser(
        "codec-server",
        help="decrypt payloads for the Temporal Web UI with SYNCHUB_CODEC_KEYS (/encode, /decode)",
    )
    codec.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    codec.add_argument("--port", type=int, default=8234, help="port (default 8234)")
    codec.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="URL",
        help="Web UI origin allowed to call it (repeatable; default the dev UI on :8233)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, validate settings and arguments, then run the command."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "dev":
            from devstack.run import EntryPoints, run_dev
            from worker import build_worker, configure_logging

            entry = EntryPoints(
                build_worker,
                lambda client, local, source, params: start_sync(
                    client, local, source, params, None, None, None
                ),
                configure_logging,
            )
            return run_dev(settings, entry)
        if args.command == "watch":
            return cmd_watch(args, settings)
        if args.command == "codec-server":
            return cmd_codec_server(args, settings)
        if args.command == "trace":
            return trace_command(args.workflow_id, traces_path(settings))
        if settings.telemetry.tracing and args.command in ("run", "resync", "schedules"):
            start_tracing("synchub-starter", settings)  # the trace's root span
        if args.command in ("run", "resync"):
            spec = get_spec(args.source)
            spec.validate_params(parse_params(args.param))
            try:
                spec.validate_partitions(args.partition, settings)
            except InvalidParamsError as exc:
                raise UsageError(f"--partition: {exc}") from None
            if args.max_concurrent is not None and args.max_concurrent < 1:
                raise UsageError("--max-concurrent must be at least 1")
            if args.reconnect_timeout < 0:
                raise UsageError("--reconnect-timeout must be 0 or more seconds")
            if getattr(args, "dry_run", False) and spec.child_workflow != "SyncPartitionWorkflow":
                raise UsageError(f"--dry-run: {args.source} has no dry run (its partitions act)")
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
    except (
        TemporalUnavailableError,
        KafkaUnavailableError,
        UnknownTopicError,
        CodecKeyError,
    ) as exc:
        print(f"starter.py: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader went away (``watch ... | head``): nothing left to say to anyone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
