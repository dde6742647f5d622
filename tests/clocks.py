"""The process-wide clock held still for a test: one way to set it and put it back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

from models import clock
from models.clock import ManualClock


@contextlib.contextmanager
def default_clock_at(start: datetime) -> Iterator[ManualClock]:
    """``models.clock``'s default clock as a ``ManualClock`` at ``start``, restored after.

    Connectors and the change store read the time from the default clock; a test that sets
    it must give back the one it found, or later tests in the process run at its instant.
    """
    saved = clock.default_clock()
    manual = ManualClock(start)
    clock.set_default_clock(manual)
    try:
        yield manual
    finally:
        clock.set_default_clock(saved)
