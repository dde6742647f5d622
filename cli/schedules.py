"""``schedules``: apply synchub's Temporal Schedules or act on one."""

from __future__ import annotations

import argparse

from connectors.schedules import schedule_definitions
from infra.schedule_check import check_schedules
from infra.schedules import apply_schedules
from infra.temporal import connect
from settings import Settings


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
