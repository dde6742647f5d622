"""How ``run --wait`` shows a run while it goes: live bars on a terminal, plain lines elsewhere.

Both views get the same calls: ``update`` with each answer of the ``progress`` query,
``note`` for things to say now (lost Temporal, reconnected), ``close`` before the summary.
A partition's failure is printed when it is first seen, not only in the final summary.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import (
    Progress as Bars,
)

from cli.format import format_progress
from models.sync import PartitionError, Progress


class ProgressView(Protocol):
    """What ``wait_for`` shows progress on."""

    def update(self, progress: Progress) -> None:
        """Show the latest answer of the ``progress`` query."""

    def note(self, text: str) -> None:
        """Say something now (above the bars, if any)."""

    def close(self, final: Progress | None = None) -> None:
        """Stop drawing (showing ``final`` first, if given); the summary follows."""


def _new_errors(seen: set[tuple[str, str]], errors: list[PartitionError]) -> list[str]:
    """Lines for the errors not shown yet (the query keeps the last few, newest last)."""
    lines = []
    for e in errors:
        if (e.partition, e.error) not in seen:
            seen.add((e.partition, e.error))
            lines.append(f"  failed {e.partition}: {e.error}")
    return lines


class PlainView:
    """One line per change of progress, for logs and pipes (no control sequences)."""

    def __init__(self) -> None:
        self._last = ""
        self._errors: set[tuple[str, str]] = set()

    def update(self, progress: Progress) -> None:
        """Print the status line when it changed, and new failures."""
        line = format_progress(progress)
        if line != self._last:
            print(line, flush=True)
            self._last = line
        for error in _new_errors(self._errors, progress.errors):
            print(error, flush=True)

    def note(self, text: str) -> None:
        """Print ``text``."""
        print(text, flush=True)

    def close(self, final: Progress | None = None) -> None:
        """Nothing is drawn, nothing to stop (the summary says what ``final`` would)."""


class BarsView:
    """Live bars (rich): partitions done/total, records and records per second, failures."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console()
        self._bars = Bars(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        )
        self._partitions: TaskID = self._bars.add_task("partitions", total=None, detail="")
        self._records: TaskID = self._bars.add_task("records", total=None, detail="")
        self._errors: set[tuple[str, str]] = set()
        self._started = time.monotonic()
        self._open = True
        self._bars.start()

    def update(self, progress: Progress) -> None:
        """Move the bars; print new failures above them."""
        parts, recs = progress.partitions, progress.records
        finished = parts.done + parts.failed + parts.skipped
        self._bars.update(
            self._partitions,
            total=parts.total or None,
            completed=finished,
            detail=f"{parts.running} running, {parts.failed} failed  {progress.state.value}",
        )
        rate = recs.fetched / max(time.monotonic() - self._started, 1e-3)
        self._bars.update(
            self._records,
            completed=recs.fetched,
            detail=f"{rate:,.0f} records/s  upserted {recs.upserted}, deleted {recs.deleted}, "
            f"dead-lettered {recs.dead_lettered}",
        )
        for error in _new_errors(self._errors, progress.errors):
            self._console.print(error, style="red", markup=False, highlight=False)

    def note(self, text: str) -> None:
        """Print ``text`` above the bars."""
        self._console.print(text, markup=False, highlight=False)

    def close(self, final: Progress | None = None) -> None:
        """Draw the last state (``final``, if given) and stop the live display (once)."""
        if self._open:
            if final is not None:
                self.update(final)
            self._open = False
            self._bars.stop()


def view_for_stdout() -> ProgressView:
    """Bars when stdout is a terminal, plain lines otherwise (pipes, files, CI logs)."""
    return BarsView() if sys.stdout.isatty() else PlainView()
