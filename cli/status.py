"""``status`` and the run signals ``stop`` / ``pause`` / ``resume``."""

from __future__ import annotations

import argparse

from temporalio.service import RPCError

from cli.format import format_progress
from infra.temporal import connect
from models.sync import Progress
from settings import Settings


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
