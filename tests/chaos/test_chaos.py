"""The chaos suite, short version (CI): faults injected into a running WIW sync.

Each case kills and restarts a real process on the same port mid-run (see ``harness``) and
then checks the topic against the simulator: 0 missing, 0 stale, duplicates only with an
equal event id. ``make chaos`` runs every case with a few thousand shifts and prints the
table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.chaos.harness import CASES, SHORT, Rig, run_case, table

pytestmark = pytest.mark.asyncio(loop_scope="session")

CI_CASES = [
    "broker kill+restart",
    "redis kill+restart (append-only)",
    "temporal kill+restart",
]
"""The rest run in ``make chaos`` only, to keep the suite short: worker SIGTERM and SIGKILL are
covered by ``test_sigterm.py`` and ``test_crash.py``, the big page by ``test_loop_stall.py``,
and a Redis that lost everything by ``test_missing_keys.py`` (event ids equal after FLUSHDB)."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    async with Rig(Path(tmp_path_factory.mktemp("chaos")), SHORT) as r:
        yield r


@pytest.mark.parametrize("name", CI_CASES)
async def test_chaos_case(rig: Rig, name: str) -> None:
    result = await run_case(rig, CASES[name], CI_CASES.index(name))
    print("\n" + table([result]) + "\n  " + "\n  ".join(result.notes))
    assert result.recovery_seconds is not None, (table([result]), result.notes)
    assert result.lost == 0 and result.bad_duplicates == 0, (table([result]), result.notes)
    assert result.final.whole, result.final
