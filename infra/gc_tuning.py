"""Garbage-collector settings of the worker: no collection pauses its event loop for long.

A big page (a 20,000-shift WIW day) allocates millions of objects. With CPython's default
thresholds (700, 10, 10) that triggers several full collections per page, and each one walks
every tracked object (the worker's own modules included) while holding the GIL: 50-350 ms
during which the event loop (workflow tasks, heartbeats, the Redis client) waits, whatever
thread triggered it. Measured on that page (``tests/test_loop_stall.py``): defaults 145-355
ms longest stall; with the startup objects frozen and ``GC_THRESHOLDS``, 46 ms. It is CPU
too: the default young collections walking a page's objects again and again were measured
at 40-50 % of the cost of building a page's messages.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (200_000, 20, 10)
"""Young collections every 200,000 allocations instead of 700: a page's short-lived objects
mostly die (or are untracked) before they are promoted, so full collections are rarer and
shorter. Full collections still run (every 10 middle ones), so cyclic garbage is freed.
At 50,000 a 100,000-shift first sync spent 550-590 ms collecting (25 young collections
walking the pages' records, one middle one of 170-210 ms); at 200,000, 250-360 ms in 6,
none over 90 ms, and the 20,000-shift page's longest loop stall stayed 29-54 ms (issue 11)."""


_tuned = False


def tune_gc() -> None:
    """Freeze what exists now (imports, settings, clients) and set ``GC_THRESHOLDS``.

    Called when a worker is built, after start-up: frozen objects are never walked again by a
    collection. Once per process: a second worker built in the same process changes nothing.
    """
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()  # cycles made during start-up are freed, not frozen
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
