"""Fixtures of the CLI test modules: a When I Work engine that starter.py subprocesses drive.

A module takes them with ``pytest_plugins = ("tests.starter_fixtures",)`` and names its own
Redis database in a module-level ``REDIS_DB`` (the engine is module-scoped, one per module).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio
from temporalio.client import Client

from settings import Settings
from simulators.server import ThreadedServer
from simulators.wiw import WiwState
from tests.helpers import Engine, running_engine, served_wiw
from tests.starter_env import settings_env


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[WiwState, ThreadedServer]]:
    """A When I Work simulator over real HTTP for the module."""
    with served_wiw() as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    request: pytest.FixtureRequest,
    sim: tuple[WiwState, ThreadedServer],
    temporal_client: Client,
    settings_for: Callable[..., Settings],
) -> AsyncIterator[Engine]:
    """A worker syncing ``sim`` into the module's Redis database (its ``REDIS_DB``)."""
    settings = settings_for(
        redis_db=request.module.REDIS_DB,
        wiw_url=sim[1].url,
        days_ahead=1,
        days_prior=0,
    )
    async with running_engine(temporal_client, settings) as eng:
        yield eng


@pytest.fixture
def env(engine: Engine) -> dict[str, str]:
    """The environment in which starter.py sees the engine's settings."""
    return settings_env(engine.settings)


@pytest.fixture
def state(sim: tuple[WiwState, ThreadedServer]) -> Iterator[WiwState]:
    """The simulator's data and knobs, reset before and after a test."""
    sim[0].reset()
    yield sim[0]
    sim[0].reset_knobs()
