"""The worker derives each source's own activities and topics from its registry spec."""

from __future__ import annotations

import ast
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio import activity

from activities.worker_deps import WorkerDeps, resolve_factory, source_activities, worker_topics
from connectors import REGISTRY
from connectors.temu.settings import TemuShop
from infra.publisher import KafkaPublisher
from models import activity_names
from settings import Settings
from worker import build_connectors

ROOT = Path(__file__).parents[1]


def _with_temu(settings: Settings) -> Settings:
    shop = TemuShop(
        id="wiring-shop",
        app_key="key",
        app_secret=SecretStr("s"),
        access_token=SecretStr("t"),
        api_url="http://127.0.0.1:9/openapi/router",
    )
    return settings.model_copy(update={"temu": settings.temu.model_copy(update={"shops": [shop]})})


def _names(functions: list[Callable[..., object]]) -> set[str]:
    names = set()
    for fn in functions:
        defn = activity._Definition.from_callable(fn)
        assert defn is not None, f"{fn} is not an activity"
        assert defn.name is not None
        names.add(defn.name)
    return names


def _workflow_activity_names(workflow_type: str) -> set[str]:
    """``activity_names.X`` constants a workflow module executes (read from its source)."""
    for path in (ROOT / "workflows").glob("*.py"):
        tree = ast.parse(path.read_text())
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == workflow_type]
        if classes:
            return {
                getattr(activity_names, n.attr)
                for n in ast.walk(classes[0])
                if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id == "activity_names"
            }
    raise AssertionError(f"no workflow class {workflow_type}")


async def test_every_step_and_child_activity_of_a_source_is_registered(
    settings_for: Callable[..., Settings], kafka_brokers: str
) -> None:
    settings = _with_temu(settings_for(redis_db=3))
    connectors, unconfigured = build_connectors(settings)
    assert {"temu-orders", "temu-inventory"} <= set(connectors), unconfigured
    publisher = KafkaPublisher(kafka_brokers)
    async with AsyncExitStack() as resources:
        for conn in connectors.values():
            resources.push_async_callback(conn.aclose)
        resources.callback(publisher.close)
        deps = WorkerDeps(settings, publisher, {}, resources)
        registered = _names(source_activities(connectors, deps))
    generic = {
        activity_names.LIST_PARTITIONS,
        activity_names.SYNC_PAGE,
        activity_names.FINISH_PARTITION,
        activity_names.SYNC_PARTITION_PASS,
    }
    assert not registered & generic, "a source factory must not re-register generic activities"
    for source in connectors:
        spec = REGISTRY[source]
        needed = set(spec.steps)
        if spec.child_workflow != "SyncPartitionWorkflow":
            needed |= _workflow_activity_names(spec.child_workflow)
        missing = needed - registered - generic
        assert not missing, f"{source}: activities {missing} not registered by its spec"
    assert activity_names.CONFIRM_SHIPMENTS in registered
    assert activity_names.RECONCILE_STOCK_BATCH in registered


def test_worker_topics_include_each_configured_sources_own_topics(
    settings_for: Callable[..., Settings],
) -> None:
    settings = _with_temu(settings_for(redis_db=3))
    connectors, _ = build_connectors(settings)
    topics = worker_topics(settings, connectors)
    assert settings.temu.shipments_topic in topics
    assert settings.temu.stock_topic in topics
    assert settings.kafka.deadletter_topic in topics
    without_temu = {s: c for s, c in connectors.items() if not s.startswith("temu")}
    assert settings.temu.shipments_topic not in worker_topics(settings, without_temu)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("activities.temu", "must be 'module:function'"),
        ("activities.temu:no_such_factory", "is not a callable in activities.temu"),
    ],
)
def test_a_bad_factory_name_says_what_is_wrong(name: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        resolve_factory(name)


def test_every_declared_factory_resolves() -> None:
    declared = {s: spec.activities for s, spec in REGISTRY.items() if spec.activities}
    assert declared, "TEMU declares its activities in its specs"
    for name in declared.values():
        assert callable(resolve_factory(name))
