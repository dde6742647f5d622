"""The worker's collector settings (``infra.gc_tuning``); no services needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_tune_gc_raises_the_young_threshold_and_freezes_start_up_once() -> None:
    code = (
        "import gc\n"
        "from infra.gc_tuning import GC_THRESHOLDS, tune_gc\n"
        "before = gc.get_threshold()\n"
        "assert before[0] < GC_THRESHOLDS[0] and gc.get_freeze_count() == 0\n"
        "tune_gc()\n"
        "frozen = gc.get_freeze_count()\n"
        "assert gc.get_threshold() == GC_THRESHOLDS, gc.get_threshold()\n"
        "assert frozen > 0\n"
        "tune_gc()\n"
        "assert gc.get_freeze_count() == frozen  # once per process\n"
    )
    # a child process: the settings are process-wide and must not leak into the suite
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr
