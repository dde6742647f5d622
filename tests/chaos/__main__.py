"""``python -m tests.chaos [--short] [CASE ...]``: run the chaos cases and print the table.

``make chaos`` runs the long version (a few thousand shifts, 10 s outages) and writes the
rows to ``bench/results/chaos-long.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.harness import CASES, LONG, SHORT, CaseResult, Rig, as_json, run_case, table


def save(results: list[CaseResult], size_name: str) -> None:
    """Write the rows next to the benchmark's results."""
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"chaos-{size_name}.json"
    path.write_text(json.dumps(as_json(results), indent=2, default=str))
    print(f"\nwritten to {path}")


async def main(size_name: str, names: list[str]) -> int:
    size = SHORT if size_name == "short" else LONG
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="synchub-chaos-") as tmp:
        async with Rig(Path(tmp), size) as rig:
            for i, name in enumerate(names):
                began = time.monotonic()
                res = await run_case(rig, CASES[name], i)
                results.append(res)
                print(
                    f"{name}: {'ok' if res.ok else 'NOT OK'} in {time.monotonic() - began:.0f} s",
                    *(f"\n    {n}" for n in res.notes),
                    flush=True,
                )
    print()
    print(table(results))
    save(results, size_name)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m tests.chaos")
    parser.add_argument("--short", action="store_true", help="the CI size")
    parser.add_argument("cases", nargs="*", help=f"default: all of {list(CASES)}")
    args = parser.parse_args()
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {list(CASES)}")
    sys.exit(asyncio.run(main("short" if args.short else "long", args.cases or list(CASES))))
