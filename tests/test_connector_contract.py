"""One contract for every registered connector, run against its simulator over real HTTP.

Each entry of ``connectors.REGISTRY`` is checked the same way: it lists partitions its own
spec accepts, pages every partition to the end without looping, gives the same raw digests
for unchanged data (skips an unchanged page by its digest, and sees an edit), converts raw
pages to the same records (fingerprint-first connectors), answers "does not exist" for
a missing key, dead-letters a malformed record once with the field named (through the engine:
the session's Temporal, Kafka and Redis), fails on refused credentials without retrying and
names the setting to fix, waits out rate-limit answers and then succeeds, and never puts a
secret into an error text.

The module names no source. A spec's ``simulator`` package provides a
``simulators.contract.ContractSimulator`` in its ``contract`` module; a check a connector
cannot take part in is skipped by capability (no pages, no point lookups, no stable pages,
no raw pages), never by name. A new connector gets the suite by setting ``simulator`` and
writing that module.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol, cast

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.errors import translate_errors
from connectors import REGISTRY, Connector, ConnectorSpec
from connectors.base import RawPages
from models.errors import PermanentError
from models.records import Lookup, Page
from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import Settings
from simulators.contract import ContractSimulator, simulator_for
from tests.helpers import Engine, envelope, read, running_engine
from workflows.sync_all import SyncAllWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

REDIS_DB = 8
N = 6
"""Records seeded per check: a few per partition, enough for several pages where pages are
a few days."""
MAX_PAGES = 100
"""Pages per partition after which paging counts as a loop."""
PAGED_CHILD = "SyncPartitionWorkflow"


class Paged(Protocol):
    """What the checks use of a connector whose partitions are pages of records."""

    incremental: bool

    async def list_partitions(self, params: dict[str, Any]) -> list[str]: ...

    async def fetch_page(
        self,
        partition: str,
        cursor: str | None,
        params: dict[str, Any],
        known_digest: str | None = None,
        checkpoint: str | None = None,
    ) -> Page: ...

    async def lookup(
        self, partition: str, keys: list[str], params: dict[str, Any]
    ) -> list[Lookup]: ...


def require_pages(spec: ConnectorSpec) -> None:
    """Skip unless the source's partitions are pages of records (the generic partition
    workflow); others run a child workflow of their own."""
    if spec.child_workflow != PAGED_CHILD:
        pytest.skip(f"{spec.source} has no pages: its partitions run {spec.child_workflow}")


def as_paged(spec: ConnectorSpec, connector: Connector) -> Paged:
    """``connector`` as a source of pages, or skip (see ``require_pages``)."""
    require_pages(spec)
    return cast(Paged, connector)


# -- fixtures: one simulator and one engine per registered connector -----------------------


@pytest.fixture(scope="module", params=sorted(REGISTRY), ids=str)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[ConnectorSpec, ContractSimulator]]:
    """The spec and its simulator, serving on a free port for this connector's checks."""
    spec = REGISTRY[request.param]
    sim = simulator_for(spec)
    sim.start()
    try:
        yield spec, sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def spec(served: tuple[ConnectorSpec, ContractSimulator]) -> ConnectorSpec:
    return served[0]


@pytest.fixture(scope="module")
def sim(served: tuple[ConnectorSpec, ContractSimulator]) -> ContractSimulator:
    return served[1]


@pytest.fixture(scope="module")
def settings(sim: ContractSimulator, settings_for: Callable[..., Settings]) -> Settings:
    return sim.configure(settings_for(redis_db=REDIS_DB))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(temporal_client: Client, settings: Settings) -> AsyncIterator[Engine]:
    async with running_engine(temporal_client, settings) as eng:
        yield eng


async def start_over(sim: ContractSimulator, settings: Settings) -> None:
    """An empty, healthy simulator and an empty change store."""
    sim.reset()
    r = aioredis.Redis.from_url(settings.redis.url)
    await r.flushdb()
    await r.aclose()


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def fresh(sim: ContractSimulator, settings: Settings) -> AsyncIterator[None]:
    """Every check starts over."""
    await start_over(sim, settings)
    yield
    sim.reset()


@pytest_asyncio.fixture(loop_scope="session")
async def connector(spec: ConnectorSpec, settings: Settings) -> AsyncIterator[Connector]:
    built = spec.build(settings)
    try:
        yield built
    finally:
        await built.aclose()


# -- helpers ---------------------------------------------------------------------------------


async def read_partition(connector: Paged, partition: str, params: dict[str, Any]) -> list[Page]:
    """Every page of ``partition``, following cursors to the end; fails on a loop."""
    pages: list[Page] = []
    cursors: set[str] = set()
    cursor: str | None = None
    while True:
        page = await connector.fetch_page(partition, cursor, params)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert cursor not in cursors, f"{partition}: cursor {cursor!r} came back: a paging loop"
        assert len(pages) < MAX_PAGES, f"{partition}: still paging after {MAX_PAGES} pages"
        cursors.add(cursor)


async def read_all(connector: Paged, params: dict[str, Any]) -> dict[str, list[Page]]:
    return {
        p: await read_partition(connector, p, params)
        for p in await connector.list_partitions(params)
    }


async def sync(
    engine: Engine, spec: ConnectorSpec, params: dict[str, Any], workflow_id: str | None = None
) -> SyncAllResult:
    result: SyncAllResult = await engine.client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source=spec.source, params=params),
        id=workflow_id or f"syncall/{spec.source}/contract-{uuid.uuid4().hex[:8]}",
        task_queue=engine.settings.temporal.task_queue,
    )
    return result


async def activity_attempts(client: Client, workflow_id: str) -> list[int]:
    """The attempt of every activity the workflow and its children ran to its end.

    Local activities (the first partition pass) leave a marker whose data holds theirs.
    """
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    attempts: list[int] = []
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):  # a local activity
            marker = event.marker_recorded_event_attributes
            if "data" in marker.details:
                data = json.loads(marker.details["data"].payloads[0].data)
                attempts.append(int(data.get("attempt", 0)))
        if event.HasField("activity_task_started_event_attributes"):
            attempts.append(event.activity_task_started_event_attributes.attempt)
        if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            attempts += await activity_attempts(client, child)
    return attempts


def error_texts(exc: BaseException) -> str:
    """Everything an operator could see of ``exc``: message, repr, causes, traceback."""
    return "".join(traceback.format_exception(exc)) + repr(exc)


# -- the contract ------------------------------------------------------------------------------


async def test_lists_partitions_its_spec_accepts(
    spec: ConnectorSpec, sim: ContractSimulator, settings: Settings, connector: Connector
) -> None:
    sim.seed(N)
    params = spec.validate_params(sim.params())
    partitions = await connector.list_partitions(params)
    assert partitions, "no partitions listed"
    assert len(set(partitions)) == len(partitions), f"partitions repeat: {partitions}"
    assert all(isinstance(p, str) and p.strip() for p in partitions)
    assert spec.validate_partitions(partitions, settings) == partitions
    assert await connector.list_partitions(params) == partitions  # same data, same order


async def test_pages_every_partition_to_the_end(
    spec: ConnectorSpec, sim: ContractSimulator, connector: Connector
) -> None:
    paged = as_paged(spec, connector)
    keys = sim.seed(N)
    pages = await read_all(paged, sim.params())
    read_keys = [r.key for ps in pages.values() for p in ps for r in p.records]
    assert sorted(read_keys) == sorted(keys)  # each record once: in one page of one partition
    assert not [m for ps in pages.values() for p in ps for m in p.malformed]
    if paged.incremental:  # a pass that read everything says where the next one starts
        assert all(ps[-1].checkpoint for ps in pages.values()), pages


async def test_raw_digests_are_stable_skip_unchanged_pages_and_see_changes(
    spec: ConnectorSpec, sim: ContractSimulator, connector: Connector
) -> None:
    paged = as_paged(spec, connector)
    changed, *_ = sim.seed(N)
    params = sim.params()
    first = await read_all(paged, params)
    stable = [(p, i, page) for p, ps in first.items() for i, page in enumerate(ps) if page.stable]
    if not stable:
        pytest.skip(f"{spec.source} has no stable pages (it reads incrementally)")
    second = await read_all(paged, params)
    digests = {p: [(page.raw_digest, page.next_cursor) for page in ps] for p, ps in first.items()}
    assert {p: [(g.raw_digest, g.next_cursor) for g in ps] for p, ps in second.items()} == digests
    assert all(page.raw_digest for _, _, page in stable), "a stable page without a digest"
    for partition, index, page in stable:
        cursor = None if index == 0 else first[partition][index - 1].next_cursor
        again = await paged.fetch_page(partition, cursor, params, page.raw_digest)
        assert again.unchanged and not again.records, (partition, index)
        assert again.raw_digest == page.raw_digest and again.next_cursor == page.next_cursor
    sim.change(changed)  # a digest that does not cover the content would hide this edit
    (where,) = [
        (p, i)
        for p, ps in first.items()
        for i, page in enumerate(ps)
        for r in page.records
        if r.key == changed
    ]
    partition, index = where
    cursor = None if index == 0 else first[partition][index - 1].next_cursor
    old = first[partition][index]
    edited = await paged.fetch_page(partition, cursor, params, old.raw_digest)
    assert not edited.unchanged and edited.raw_digest != old.raw_digest
    assert changed in [r.key for r in edited.records]


async def test_raw_pages_convert_to_what_fetch_page_returns(
    spec: ConnectorSpec, sim: ContractSimulator, connector: Connector
) -> None:
    """Fingerprint-first (``RawPages``): stable raw fingerprints, the same records and dead
    letters as ``fetch_page`` once converted."""
    paged = as_paged(spec, connector)
    if not isinstance(connector, RawPages):
        pytest.skip(f"{spec.source} converts its pages itself (no RawPages)")
    sim.seed(N)
    bad, _ = sim.add_malformed()
    params = sim.params()
    dead: list[str | None] = []
    for partition in await paged.list_partitions(params):
        cursor: str | None = None
        while True:
            cooked = await paged.fetch_page(partition, cursor, params)
            raw = await connector.fetch_page_raw(partition, cursor, params)
            # a known digest that differs: a page whose bytes changed since its last pass
            again = await connector.fetch_page_raw(partition, cursor, params, "changed")
            assert [(k, fp) for k, fp, _ in again.raw] == [(k, fp) for k, fp, _ in raw.raw]
            for page in (raw, again):
                converted = connector.convert(partition, [item for _, _, item in page.raw])
                assert {r.key: r.data for r in [*page.records, *converted.records]} == {
                    r.key: r.data for r in cooked.records
                }
                malformed = [m.key for m in [*page.malformed, *converted.malformed]]
                assert sorted(map(str, malformed)) == sorted(str(m.key) for m in cooked.malformed)
                assert (page.next_cursor, page.raw_digest) == (
                    cooked.next_cursor,
                    cooked.raw_digest,
                )
            dead += malformed
            cursor = cooked.next_cursor
            if cursor is None:
                break
    assert dead == [bad]


async def test_a_missing_key_does_not_exist(
    spec: ConnectorSpec, sim: ContractSimulator, connector: Connector
) -> None:
    paged = as_paged(spec, connector)
    if paged.incremental:  # a pass of what changed has no missing keys to look up
        pytest.skip(f"{spec.source} makes no point lookups (it reads incrementally)")
    present = sim.seed(N)[0]
    missing = sim.missing_key()
    params = sim.params()
    partition = (await paged.list_partitions(params))[0]
    found = {x.key: x for x in await paged.lookup(partition, [missing, present], params)}
    assert found[missing].record is None  # the upstream says: no such record
    record = found[present].record  # and a record that exists is found
    assert record is not None and record.key == present


async def test_a_malformed_record_is_dead_lettered_once_with_the_reason(
    spec: ConnectorSpec, sim: ContractSimulator, engine: Engine
) -> None:
    require_pages(spec)
    await read(engine.deadletter, idle=0.3)  # nothing left over from another check
    good = sim.seed(N)
    bad, field = sim.add_malformed()
    first = await sync(engine, spec, sim.params())
    assert first.state == RunState.COMPLETED, first
    assert (first.records.dead_lettered, first.records.upserted) == (1, len(good)), first
    second = await sync(engine, spec, sim.params())  # the same bad record, read again
    assert second.state == RunState.COMPLETED and second.records.dead_lettered == 0, second
    dead = [m for m in await read(engine.deadletter, idle=0.5) if m.key == bad]
    assert len(dead) == 1, dead
    body = envelope(dead[0])
    assert body["source"] == spec.source and body["key"] == bad
    assert field in body["reason"], body["reason"]


async def test_a_refused_login_is_not_retried_and_names_the_setting(
    spec: ConnectorSpec, sim: ContractSimulator, connector: Connector
) -> None:
    paged = as_paged(spec, connector)
    sim.seed(N)
    sim.reject_credentials()
    params = sim.params()
    with pytest.raises(PermanentError) as refused:
        partition = (await paged.list_partitions(params))[0]
        await paged.fetch_page(partition, None, params)
    assert sim.auth_setting in str(refused.value), str(refused.value)

    @translate_errors
    async def activity() -> None:  # what every activity does with it
        raise refused.value

    with pytest.raises(ApplicationError) as failure:
        await activity()
    assert failure.value.non_retryable, failure.value


async def test_rate_limit_answers_are_waited_out(
    spec: ConnectorSpec, sim: ContractSimulator, engine: Engine, settings: Settings
) -> None:
    """Each rate-limit answer the upstream may give: the first twice in a row, the others
    (inferred variants) once, to keep the check short."""
    require_pages(spec)
    assert sim.rate_limits, "the simulator names no rate-limit answer"
    for answer in sim.rate_limits:
        await start_over(sim, settings)
        keys = sim.seed(N)
        k = 2 if answer == sim.rate_limits[0] else 1
        sim.throttle(k, answer)
        result = await sync(engine, spec, sim.params())
        assert result.state == RunState.COMPLETED and not result.failed, (answer, result)
        assert result.records.upserted == len(keys), (answer, result)
        assert sim.throttled() == k, answer  # all were answered, and waited out


async def test_refused_credentials_end_the_run_at_once_and_leak_no_secret(
    spec: ConnectorSpec,
    sim: ContractSimulator,
    engine: Engine,
    connector: Connector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No activity is tried twice; the connector's error, the run's failure and every log
    line name the setting to fix and hold none of the configured secrets."""
    paged = as_paged(spec, connector)
    assert sim.secrets, "the simulator configures no secret to look for"
    caplog.set_level(logging.DEBUG)
    sim.seed(N)
    sim.reject_credentials()
    texts: list[str] = []
    params = sim.params()
    try:
        partition = (await paged.list_partitions(params))[0]
        await paged.fetch_page(partition, None, params)
    except Exception as exc:
        texts.append(error_texts(exc))
    workflow_id = f"syncall/{spec.source}/contract-refused-{uuid.uuid4().hex[:8]}"
    try:
        result = await sync(engine, spec, params, workflow_id)
        assert result.state != RunState.COMPLETED or result.failed, result
        texts.append(result.model_dump_json())
    except WorkflowFailureError as exc:
        texts.append(error_texts(exc))
    assert len(texts) == 2 and all(sim.auth_setting in t for t in texts), texts  # real errors
    attempts = await activity_attempts(engine.client, workflow_id)
    assert attempts and set(attempts) == {1}, attempts  # refused once, never retried
    texts.append(caplog.text)
    leaked = [s for s in sim.secrets for t in texts if s in t]
    assert not leaked, f"secrets in error texts: {len(leaked)}"
