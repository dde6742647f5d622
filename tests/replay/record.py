"""Record the histories the replay test replays: ``python -m tests.replay.record``.

Runs every workflow type for real (its own headless dev stack, the Advoware and TEMU
simulators over HTTP, an in-process worker) and writes each history as JSON to
``tests/replay/histories/``:

- ``SyncAllWorkflow``: an Advoware run that continues as new (3 employees, 2 children per
  run), both runs of the chain, a run steered by ``pause``/``resume``, and a run that
  skips partitions another run holds;
- ``SyncPartitionWorkflow``: an Advoware employee (in one activity, and in one-day pages
  that take two) and a TEMU orders shop (with its ``confirm_shipments`` step);
- ``TemuInventoryWorkflow``: a quick stock run of a TEMU shop.

The partition histories of runs started before ``SyncPartitionInput.local_pass`` existed
(``sync_partition_advoware*.json``, ``sync_partition_temu_orders.json`` without
``local_pass`` in the name) are kept as they were: they prove such runs still replay. So
are the sync-all histories recorded before children were started without waiting
(``sync_all_gathered_starts_*.json``: a batch of starts awaited together) and those recorded
before the listing became a local activity (the other ``sync_all_*.json`` without
``local_listing`` in the name: a ``list_partitions`` activity task before the children).

Re-run it after an *intentional* change of workflow code (and commit the new files); an
unintentional change is what ``tests/test_replay.py`` exists to catch. Histories hold
decisions, counts and parameters, never secrets (the simulators' credentials stay in the
worker's settings).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from confluent_kafka import Producer
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from devstack.services import DevStack
from models.sync import SyncAllInput, SyncAllResult
from simulators.advoware import make_sim_app as advoware_app
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from simulators.temu import make_sim_app as temu_app
from simulators.temu.dev import local_temu_shop
from tests.helpers import make_settings, running_engine
from workflows.options import partition_workflow_id
from workflows.sync_all import SyncAllWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
BERLIN = ZoneInfo("Europe/Berlin")
SHOP = "replay-shop"


async def save(handle: WorkflowHandle[Any, Any], name: str, run_id: str | None = None) -> None:
    """Write one run's history (``run_id``, default the latest) as ``<name>.json``."""
    target = handle._client.get_workflow_handle(handle.id, run_id=run_id)
    history = await target.fetch_history()
    text = json.dumps(json.loads(history.to_json()), indent=1, sort_keys=True)
    (HISTORIES / f"{name}.json").write_text(text + "\n")
    print(f"recorded {name} ({len(history.events)} events)")


async def sync_all(client: Client, queue: str, **kw: Any) -> WorkflowHandle[Any, SyncAllResult]:
    source = kw["source"]
    return await client.start_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(**kw),
        id=f"syncall/{source}/replay-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
    )


async def record(stack: DevStack) -> None:
    adv_state, adv = advoware_app()
    temu_state, temu = temu_app()
    adv_server, temu_server = ThreadedServer(adv).start(), ThreadedServer(temu).start()
    try:
        today = datetime.now(BERLIN).date()
        adv_state.seed(4, 6, today - timedelta(days=4), today + timedelta(days=40), seed=7)
        now = int(time.time())
        temu_state.seed_stock(3, 2, seed=3)
        temu_state.seed_orders(12, start_ts=now - 86_400, end_ts=now - 60, seed=5)
        settings = make_settings(
            temporal_address=stack.temporal_address,
            kafka_brokers=stack.kafka_brokers,
            redis_url=stack.redis_url,
            redis_db=0,
            advoware=local_advoware_settings(
                adv_state, adv_server.url, days_back=5, days_ahead=45, page_days=20
            ),
            temu_shops=[local_temu_shop(temu_server.url, SHOP)],
        )
        client = await Client.connect(
            stack.temporal_address, data_converter=pydantic_data_converter
        )
        queue = settings.temporal.task_queue
        async with running_engine(client, settings, settings.kafka.advoware_topic):
            # SyncAll with continue-as-new, and the partition workflow of one employee
            chain = await sync_all(client, queue, source="advoware", children_per_run=2)
            await chain.result()
            await save(
                chain, "sync_all_local_listing_continue_as_new", run_id=chain.first_execution_run_id
            )
            await save(chain, "sync_all_local_listing_after_continue_as_new")
            employee = next(e["kuerzel"] for e in adv_state.employees() if e["aktiv"])
            await save(
                client.get_workflow_handle(partition_workflow_id("advoware", employee)),
                "sync_partition_advoware_local_pass",
            )

            # SyncAll steered by signals while its children run
            adv_state.set_knobs(latency_ms=200)
            steered = await sync_all(client, queue, source="advoware", max_concurrent=1)
            await asyncio.sleep(1.0)
            await steered.signal(SyncAllWorkflow.pause)
            await asyncio.sleep(1.0)
            await steered.signal(SyncAllWorkflow.resume)
            await steered.result()
            adv_state.set_knobs(latency_ms=0)
            await save(steered, "sync_all_local_listing_pause_resume")

            # two overlapping runs: the second finds partitions held by the first and skips them
            adv_state.set_knobs(latency_ms=150)
            holder = await sync_all(client, queue, source="advoware", max_concurrent=1)
            await asyncio.sleep(0.5)
            overlapping = await sync_all(client, queue, source="advoware", max_concurrent=1)
            await holder.result()
            skipped = (await overlapping.result()).skipped
            adv_state.set_knobs(latency_ms=0)
            if not skipped:
                raise RuntimeError("the overlapping run skipped nothing; record again")
            await save(overlapping, "sync_all_local_listing_skips_held_partitions")

            # TEMU orders: a partition workflow with its confirm_shipments step
            orders = await sync_all(client, queue, source="temu-orders")
            await orders.result()
            await save(orders, "sync_all_local_listing_temu_orders")
            await save(
                client.get_workflow_handle(partition_workflow_id("temu-orders", SHOP)),
                "sync_partition_temu_orders_local_pass",
            )

            # TEMU inventory: desired stock on erp.stock, one quick run
            producer = Producer({"bootstrap.servers": settings.kafka.brokers, "acks": "all"})
            for sku in temu_state.skus():
                value = json.dumps({"stock": int(sku["stock"]) + 3}).encode()
                producer.produce(
                    settings.temu.stock_topic, key=sku["outSkuSn"].encode(), value=value
                )
            producer.flush(10)
            stock = await sync_all(
                client, queue, source="temu-inventory", params={"mode": "full", "batch_size": 2}
            )
            await stock.result()
            await save(
                client.get_workflow_handle(partition_workflow_id("temu-inventory", SHOP)),
                "temu_inventory",
            )

        # one-day pages: a partition needs more than its local pass (50 pages at most) and
        # goes on in sync_page activities, so a moved PARTITION_HISTORY_LIMIT shows in replay
        daily = make_settings(
            temporal_address=stack.temporal_address,
            kafka_brokers=stack.kafka_brokers,
            redis_url=stack.redis_url,
            redis_db=0,
            advoware=local_advoware_settings(
                adv_state, adv_server.url, days_back=5, days_ahead=55, page_days=1
            ),
        )
        async with running_engine(client, daily, daily.kafka.advoware_topic):
            paged = await sync_all(
                client, daily.temporal.task_queue, source="advoware", partitions=[employee]
            )
            await paged.result()
            await save(
                client.get_workflow_handle(partition_workflow_id("advoware", employee)),
                "sync_partition_advoware_local_pass_then_pages",
            )
    finally:
        adv_server.stop()
        temu_server.stop()


def main() -> int:
    """Start a throw-away dev stack, record, stop it."""
    HISTORIES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="synchub-replay-") as tmp:
        stack = DevStack(
            temporal_port=0, ui_port=0, kafka_port=0, redis_port=0, state_dir=tmp, headless=True
        )
        with stack:
            asyncio.run(record(stack))
    return 0


if __name__ == "__main__":
    sys.exit(main())
