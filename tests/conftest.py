"""Session fixtures: one real dev stack (Temporal, Kafka, Redis) shared by every test module.

The services are the real binaries from the project's dependencies, started once per test
session on free ports with their state in a temporary folder, so tests talk to them over real
connections and never collide with a developer's running stack. Kafka topics are not created
here: each test creates what it needs with ``infra.publisher.ensure_topics``, under names of its
own, so tests do not see each other's messages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from devstack.services import DevStack
from settings import Settings
from tests.helpers import make_settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """The running dev stack: headless Temporal, tansu and valkey on free ports."""
    state_dir: Path = tmp_path_factory.mktemp("devstack")
    dev = DevStack(
        temporal_port=0,
        ui_port=0,
        kafka_port=0,
        redis_port=0,
        state_dir=state_dir,
        headless=True,
    )
    with dev:
        yield dev


@pytest.fixture(scope="session")
def temporal_address(stack: DevStack) -> str:
    """``host:port`` of the session's Temporal frontend."""
    return stack.temporal_address


@pytest.fixture(scope="session")
def kafka_brokers(stack: DevStack) -> str:
    """Bootstrap servers of the session's Kafka-protocol broker."""
    return stack.kafka_brokers


@pytest.fixture(scope="session")
def redis_url(stack: DevStack) -> str:
    """URL of the session's Redis-protocol server."""
    return stack.redis_url


@pytest.fixture(scope="session")
def settings_for(
    temporal_address: str, kafka_brokers: str, redis_url: str
) -> Callable[..., Settings]:
    """``tests.helpers.make_settings`` against the session's services (the rest as keywords)."""
    return functools.partial(
        make_settings,
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_client(temporal_address: str) -> Client:
    """A Temporal client on the session loop, with the pydantic data converter the worker uses."""
    return await Client.connect(temporal_address, data_converter=pydantic_data_converter)
