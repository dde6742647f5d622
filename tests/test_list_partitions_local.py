"""Listing partitions as a local activity (issue 11): no activity round trip before the children.

``SyncAllWorkflow`` lists its partitions in a local activity run inside its first workflow
task, so the first children are started by that same task. These tests run it against the
real dev server and the Advoware simulator (its listing is one upstream request) and read
the shape from the run's history: what a failed listing reports (a local activity's
failure reaches the workflow unwrapped, unlike an activity's), and that a rate-limited
listing waits as long as the upstream asks, in the worker or on a workflow timer.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from models import activity_names
from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import Settings
from simulators.advoware import AdvowareState
from simulators.advoware.api import EMPLOYEES
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from tests.helpers import Engine, running_engine, served_advoware, today_berlin
from workflows import options
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
DAYS_BACK, DAYS_AHEAD = 2, 5
REDIS_DB = 11
LA_MARKER = "core_local_activity"
HISTORIES = sorted((Path(__file__).parent / "replay" / "histories").glob("*.json"))
LOCAL_PRESET_OF = {
    activity_names.LIST_PARTITIONS: "LIST_PARTITIONS_LOCAL",
    activity_names.SYNC_PARTITION_PASS: "LOCAL_PASS",
}
"""Which local preset each local activity runs with (the activity presets:
``tests/test_workflow_shape.py``)."""


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[AdvowareState, ThreadedServer]]:
    with served_advoware() as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(
    sim, temporal_client: Client, settings_for: Callable[..., Settings]
) -> AsyncIterator[Engine]:
    state, server = sim
    settings = settings_for(
        redis_db=REDIS_DB,
        advoware=local_advoware_settings(
            state, server.url, days_back=DAYS_BACK, days_ahead=DAYS_AHEAD, page_days=31
        ),
    )
    async with running_engine(temporal_client, settings, settings.kafka.advoware_topic) as eng:
        yield eng


@pytest.fixture(autouse=True)
def seeded(sim) -> Iterator[list[str]]:
    """Three active employees with one appointment each; healthy knobs after the test."""
    state, _ = sim
    state.seed(
        3,
        1,
        today_berlin() - timedelta(days=DAYS_BACK - 1),
        today_berlin() + timedelta(days=DAYS_AHEAD - 1),
        seed=5,
    )
    yield [e["kuerzel"] for e in state.employees() if e["aktiv"]]
    state.reset_knobs()


async def run(eng: Engine, **kw: Any) -> tuple[SyncAllResult | BaseException, list[HistoryEvent]]:
    """The run's result (or its failure) and its history."""
    handle = await eng.client.start_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="advoware", **kw),
        id=f"syncall/advoware/listing-{uuid.uuid4().hex[:8]}",
        task_queue=eng.settings.temporal.task_queue,
    )
    outcome: SyncAllResult | BaseException
    try:
        outcome = await handle.result()
    except WorkflowFailureError as exc:
        outcome = exc
    return outcome, list((await handle.fetch_history()).events)


def named(events: list[HistoryEvent], kind: int) -> list[HistoryEvent]:
    return [e for e in events if e.event_type == kind]


def marker_data(event: HistoryEvent) -> dict[str, Any]:
    """The local activity marker's data: activity type, attempt, backoff."""
    payload = event.marker_recorded_event_attributes.details["data"].payloads[0]
    return dict(json.loads(payload.data))


def la_markers(events: list[HistoryEvent]) -> list[dict[str, Any]]:
    return [
        marker_data(e)
        for e in named(events, EventType.EVENT_TYPE_MARKER_RECORDED)
        if e.marker_recorded_event_attributes.marker_name == LA_MARKER
    ]


async def test_listing_is_part_of_the_first_workflow_task(engine: Engine, seeded) -> None:
    result, events = await run(engine)
    assert isinstance(result, SyncAllResult) and result.state == RunState.COMPLETED
    assert result.partitions.total == result.partitions.done == len(seeded)
    assert named(events, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == []
    assert [m["activity_type"] for m in la_markers(events)] == [activity_names.LIST_PARTITIONS]
    first_child = next(
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    )
    done = named(events[:first_child], EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    assert len(done) == 1, "the children start in the task that listed them"


async def test_a_failed_listing_fails_the_run_with_its_reason(sim, engine: Engine) -> None:
    """A local activity's failure arrives as its bare ApplicationError, not an ActivityError.

    Caught as an activity's would be, it escaped the workflow as it was: the run failed
    with the upstream's text alone, its state still RUNNING in the search attributes.
    """
    state, _ = sim
    state.set_knobs(employees_shape="object")
    asked = state.requests[EMPLOYEES]
    failure, events = await run(engine)
    assert isinstance(failure, WorkflowFailureError)
    cause = failure.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "ListPartitionsFailed" and cause.non_retryable
    assert cause.message.startswith("advoware: cannot list what to sync: PermanentError: ")
    assert state.requests[EMPLOYEES] == asked + 1, "a permanent error is not retried"
    upserts = [
        e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        for e in named(events, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
    ]
    name = options.STATE_ATTR.name
    states = [json.loads(fields[name].data) for fields in upserts if name in fields]
    assert states[-1] == RunState.FAILED.value, states


async def test_unknown_partitions_are_named_and_not_retried(sim, engine: Engine, seeded) -> None:
    state, _ = sim
    asked = state.requests[EMPLOYEES]
    failure, _ = await run(engine, partitions=[seeded[0], "NOBODY"])
    assert isinstance(failure, WorkflowFailureError)
    cause = failure.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ListPartitionsFailed"
    assert cause.message.startswith(
        "advoware: cannot list what to sync: InvalidParamsError: advoware has no partitions "
        f"NOBODY (it lists {len(seeded)}: "
    ), cause.message
    assert state.requests[EMPLOYEES] == asked + 1


@pytest.mark.parametrize("retry_after", [1, 3], ids=["backoff-in-the-worker", "backoff-on-a-timer"])
async def test_a_rate_limited_listing_waits_as_asked(
    sim, engine: Engine, seeded, retry_after: int
) -> None:
    """A 429's ``Retry-After`` is honoured; past the preset's threshold it is a timer."""
    threshold = options.LIST_PARTITIONS_LOCAL.local_retry_threshold
    assert threshold is not None and timedelta(seconds=1) <= threshold < timedelta(seconds=3)
    state, _ = sim
    state.set_knobs(throttle_next=1, throttle_retry_after=retry_after)
    result, events = await run(engine)
    assert isinstance(result, SyncAllResult) and result.state == RunState.COMPLETED
    assert result.partitions.done == len(seeded)
    assert state.statuses[429] >= 1
    first_child = next(
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    )
    waited = first_child.event_time.ToDatetime() - events[0].event_time.ToDatetime()
    assert waited >= timedelta(seconds=retry_after), waited
    timers = named(events, EventType.EVENT_TYPE_TIMER_STARTED)
    if timedelta(seconds=retry_after) > threshold:
        assert len(timers) == 1
        fire = timers[0].timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        assert fire >= timedelta(seconds=retry_after - 0.5), fire
        assert [m["attempt"] for m in la_markers(events)] == [1, 2]  # the failed one, the retry
    else:
        assert timers == []
        assert [m["attempt"] for m in la_markers(events)] == [2]  # retried inside the worker


async def test_every_recorded_local_activity_has_a_local_preset() -> None:
    """A local activity's marker does not record its options, so at least its preset must exist.

    (An activity's timeouts and retries are in its scheduled event and are compared with
    its preset in ``tests/test_workflow_shape.py``.)
    """
    seen = set()
    for path in HISTORIES:
        for event in json.loads(path.read_text())["events"]:
            marker = event.get("markerRecordedEventAttributes")
            if marker is None or marker["markerName"] != LA_MARKER:
                continue
            data = json.loads(base64.b64decode(marker["details"]["data"]["payloads"][0]["data"]))
            name = data["activity_type"]
            preset = getattr(options, LOCAL_PRESET_OF[name])
            assert isinstance(preset, options.LocalActivityOptions), f"{path.name}: {name}"
            seen.add(name)
    assert seen == set(LOCAL_PRESET_OF), "record a history of each local activity"
