"""``python -m soak``: a simulated month per source against the real stack; prints the table.

Starts its own Temporal dev server, tansu and valkey (free ports, state under
``.synchub/soak``), then soaks the sources side by side, one process each (``--serial``:
in turn, in this process). Exit code 0 when no invariant was violated, 1 otherwise, 2 on
bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import multiprocessing
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from devstack.services import DevStack
from soak.harness import START, Services, Soak, SoakResult, soak_source
from soak.plan import Profile
from soak.plans import PLANS, PROFILES
from soak.report import table


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line: sources, preset and its overrides."""
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument(
        "--sources", default=",".join(PLANS), help=f"comma list of {', '.join(PLANS)}"
    )
    parser.add_argument("--profile", default="month", choices=sorted(PROFILES))
    parser.add_argument("--days", type=float, help="simulated days (overrides the profile)")
    parser.add_argument("--tick-hours", type=float, help="simulated hours per tick")
    parser.add_argument("--seed", type=int, help="seed of every random choice")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any Profile field, e.g. --set error_rate=0 --set kills=0",
    )
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first violation")
    parser.add_argument(
        "--serial",
        action="store_true",
        help="soak the sources one after another in this process (default: side by side, "
        "one process each, sharing the services)",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=540.0,
        help="real seconds for all sources together (side by side: each source's; --serial: "
        "shared out evenly); a source that spends its share stops early and says so "
        "(default 540: a month of Advoware's ticks takes about 500 s on a quiet 2-core "
        "machine, and make soak stays under 10 minutes with the stack's start and a tick "
        "that overruns)",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".synchub/soak"))
    args = parser.parse_args(argv)
    unknown = [s for s in args.sources.split(",") if s.strip() not in PLANS]
    if unknown:
        parser.error(f"unknown sources {unknown}; known: {', '.join(PLANS)}")
    return args


async def soak_all(args: argparse.Namespace, stack: DevStack) -> list[SoakResult]:
    """Each source side by side (``--serial``: in turn), each with its own Redis database."""
    profile = PROFILES[args.profile]
    overrides = {
        k: v
        for k, v in (("days", args.days), ("tick_hours", args.tick_hours), ("seed", args.seed))
        if v is not None
    }
    for pair in args.set:
        name, _, value = pair.partition("=")
        fields = {f.name: f for f in dataclasses.fields(profile)}
        if name not in fields:
            raise SystemExit(f"--set {pair}: unknown field; known: {', '.join(fields)}")
        overrides[name] = type(getattr(profile, name))(value)
    profile = dataclasses.replace(profile, **overrides)
    print(
        f"soak: {profile.days:g} simulated days per source, one tick every "
        f"{profile.tick_hours:g} simulated hours ({int(profile.days * 24 / profile.tick_hours)} "
        f"ticks), seed {profile.seed}",
        flush=True,
    )
    sources = [s.strip() for s in args.sources.split(",")]
    if not args.serial:
        return await _side_by_side(args, stack, profile, sources)
    results = []
    began = time.monotonic()
    for db, source in enumerate(sources):
        left = args.budget_seconds - (time.monotonic() - began)
        share = max(30.0, left / (len(sources) - db))
        plan = PLANS[source](profile, START)
        soak = Soak(
            plan,
            stack,
            args.state_dir,
            redis_db=db + 1,
            fail_fast=args.fail_fast,
            budget_seconds=share,
            echo=lambda line: print(line, flush=True),
        )
        results.append(await soak.run())
    return results


async def _side_by_side(
    args: argparse.Namespace, stack: DevStack, profile: Profile, sources: list[str]
) -> list[SoakResult]:
    """Every source at once, each in a process of its own (its own simulated clock).

    A tick's wall time is mostly waiting (Temporal round trips, retry backoffs, the
    reader's quiet period), so sources side by side finish a month in about the time of
    the slowest one instead of the sum.
    """
    loop = asyncio.get_running_loop()
    services = Services.of(stack)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(sources), mp_context=spawn) as pool:
        runs = [
            loop.run_in_executor(
                pool,
                soak_source,
                source,
                profile,
                services,
                args.state_dir,
                db + 1,
                args.fail_fast,
                args.budget_seconds,
            )
            for db, source in enumerate(sources)
        ]
        return list(await asyncio.gather(*runs))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.state_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    stack = DevStack(
        temporal_port=0,
        ui_port=0,
        kafka_port=0,
        redis_port=0,
        state_dir=args.state_dir,
        temporal_db=args.state_dir / f"temporal-{int(time.time())}.db",
        headless=True,
    )
    with stack:
        results = asyncio.run(soak_all(args, stack))
    print()
    print(table(results))
    print(f"\ntotal {time.monotonic() - began:.0f} s real")
    return 1 if any(r.violations for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
