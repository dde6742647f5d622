"""``starter.py status`` of a terminated run, in a module of its own.

Terminating a run does not stop the partition passes the worker is running: a page whose
request is in flight still arrives, is published and is committed, about the simulator's
latency after the termination. In ``tests/test_cli.py`` that page landed in the next test,
which had emptied Redis and seeded other shifts: its dry run found a day "proven unchanged"
(the fresh-clone CI of 2c54154). Here the module's worker is shut down after the test,
which waits for that page, before any other module's engine runs.
"""

from __future__ import annotations

import pytest

from simulators.wiw import WiwState
from tests.helpers import Engine, days
from tests.starter_env import started_id, starter

pytestmark = pytest.mark.asyncio(loop_scope="session")
pytest_plugins = ("tests.starter_fixtures",)

REDIS_DB = 4


async def test_status_of_a_terminated_run_exits_1_saying_so(
    engine: Engine, env: dict[str, str], state: WiwState
) -> None:
    state.seed(10, days=days(2), seed=3)
    state.set_knobs(latency_ms=2000)
    ran = await starter(env, "run", "wiw")
    wid = started_id(ran)
    await engine.client.get_workflow_handle(wid).terminate(reason="operator said so")

    status = await starter(env, "status", wid)
    assert status.code == 1, str(status)
    assert f"{wid}: TERMINATED" in status.out, str(status)
    assert "operator said so" in status.out + status.err, str(status)
