"""Cyclic garbage-collector settings for a worker that builds pages of 40,000 records.

A page is tens of thousands of short-lived dicts, records and messages, none of them in a
reference cycle (reference counting frees them). With CPython's default threshold (a
young collection every 700 container allocations) the collector walks them again and
again while a page is built: measured at 40-50 % of the cost of building a page's
messages. What is alive once the worker is built (modules, clients, the Temporal
runtime) is frozen out of every later collection, and young collections run every
``GEN0_THRESHOLD`` allocations: cycles are still collected, just in fewer, larger steps.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000
"""Container allocations between young collections (CPython's default: 700)."""

_tuned = False


def tune_gc() -> None:
    """Freeze what start-up allocated and raise the young threshold; once per process."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()  # cycles made during start-up are freed, not frozen
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, GEN0_THRESHOLD), gen1, gen2)
