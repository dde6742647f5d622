"""The TEMU scenario of the benchmark: ``python -m bench temu``.

Starts its own dev stack (Temporal dev server, tansu, valkey) on free ports, the TEMU
simulator in a child process (real HTTP, signed router, its default 20 QPS token bucket per
app key) and an in-process worker built by ``worker.build_worker`` with one shop, and
measures:

1. **orders**: a first sync of N parent orders seeded over the last 6 days (the shop has no
   checkpoint, so the pass reads the default 7 days): wall time, orders/s, TEMU requests by
   type (list pages vs ``shippinginfo`` enrichment, one call per new order in a shippable
   status), achieved requests/s against the limit, ``4000004`` answers (must be 0) and the
   most requests the simulator saw in any one-second window. Every order key must be
   published exactly once. Then a no-change re-sync from the checkpoint (reads ~nothing).
2. **inventory**: a catalogue of G goods x S SKUs, desired stock published on ``erp.stock``
   for every SKU with a different value for a share of them, then ``temu-inventory``
   ``mode=full``: stock updates applied per second, requests/s, ``4000004`` answers, max per
   one-second window; applied must equal the seeded differences and TEMU's stock must then
   equal the desired stock for every SKU.

The orders run is bounded by the rate limit, not by synchub: at ~19 requests/s (the client
keeps 5 % headroom under 20 QPS) 20,000 orders need ~200 list calls plus ~12,000 shipping
calls, about 11 minutes. ``--orders`` makes a smaller run; the report then extrapolates to
20,000 (clearly labelled). The time the first sync would take without enrichment is
computed from the request counts (list calls alone at the achieved rate), not measured.

It prints a table and writes ``bench/results/temu.json``. Nothing is mocked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from temporalio.client import Client

from bench import measure
from bench.report import render_temu
from bench.run import BenchFailure, git_commit, rate, run_scenario
from bench.sim import TemuSimulator
from connectors.temu.client import DEFAULT_HEADROOM, MAX_PAGE_SIZE
from connectors.temu.connector import FIRST_PASS_DAYS
from devstack.services import DevStack
from infra.consumer import Consumed, TopicReader
from infra.temporal import connect
from models.sync import RunState, SyncAllInput, SyncAllResult
from settings import (
    KafkaSettings,
    RedisSettings,
    Settings,
    SyncSettings,
    TemporalSettings,
    TemuSettings,
)
from simulators.temu.dev import local_temu_shop
from simulators.temu.state import ORDER_LIST, SHIPPING_INFO, STOCK_EDIT, STOCK_QUERY
from worker import build_worker
from workflows.sync_all import SyncAllWorkflow

log = logging.getLogger("synchub.bench.temu")

RESULTS = Path(__file__).parent / "results" / "temu.json"
"""Where the JSON results are written by default."""
SHOP = "bench-us"
"""The one shop the worker syncs."""
SEED_DAYS = 6
"""Orders are created and updated within the last this many days (inside the first pass)."""
SEED = 11
"""Seed of the simulator's deterministic generators."""
SHIPPABLE = {1, 2, 41}
"""Parent order statuses the connector enriches with the shipping address."""
REFERENCE_ORDERS = 20_000
"""Order count a smaller run is extrapolated to."""
LIMIT_QPS = 20.0
"""TEMU's limit per app key (the simulator's default bucket, ``TEMU_RATE_LIMIT_QPS``)."""
BATCH = 100
"""SKUs per inventory batch (``batch_size``'s default): one stock query each."""
PROGRESS_EVERY = 30.0
"""Seconds between progress lines during a long run."""


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    orders: int = REFERENCE_ORDERS
    """Parent orders seeded (over the last 6 days) for the first sync."""
    goods: int = 300
    """Products in the stock catalogue."""
    skus_per_goods: int = 3
    """SKUs per product."""
    changed_share: float = 0.5
    """Share of SKUs whose desired stock differs from TEMU's."""
    sim_in_process: bool = False
    """Serve the simulator from a thread of the benchmark process."""
    output: Path = RESULTS
    """JSON results file."""


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read and check the command line (exit code 2 on bad input)."""
    p = argparse.ArgumentParser(
        prog="python -m bench temu",
        description="synchub against the TEMU simulator (20 QPS per app key, one shop): first "
        "order sync with shipping enrichment and a no-change re-sync, then a full inventory "
        "reconciliation; throughput, requests per type, achieved rate vs the limit and "
        "4000004 answers.",
    )
    p.add_argument(
        "--orders",
        type=int,
        default=REFERENCE_ORDERS,
        help=f"orders seeded over the last {SEED_DAYS} days (default {REFERENCE_ORDERS}, "
        "~11 minutes at the rate limit)",
    )
    p.add_argument("--goods", type=int, default=300, help="products in the catalogue (300)")
    p.add_argument("--skus-per-goods", type=int, default=3, help="SKUs per product (3)")
    p.add_argument(
        "--changed-share",
        type=float,
        default=0.5,
        help="share of SKUs whose desired stock differs from TEMU's (0.5)",
    )
    p.add_argument(
        "--sim-in-process",
        action="store_true",
        help="serve the simulator from this process (shares its GIL) instead of a child process",
    )
    p.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results file ({RESULTS})")
    a = p.parse_args(argv)
    if not 1 <= a.orders <= 90_000:
        p.error("--orders must be between 1 and 90000 (the simulator keeps 100,000 arrivals)")
    if not 1 <= a.goods <= 10_000:
        p.error("--goods must be between 1 and 10000")
    if not 1 <= a.skus_per_goods <= 20:
        p.error("--skus-per-goods must be between 1 and 20")
    if not 0.0 <= a.changed_share <= 1.0:
        p.error("--changed-share must be between 0 and 1")
    return Options(
        orders=a.orders,
        goods=a.goods,
        skus_per_goods=a.skus_per_goods,
        changed_share=a.changed_share,
        sim_in_process=a.sim_in_process,
        output=a.output,
    )


def bench_settings(stack: DevStack, sim_url: str, tag: str) -> Settings:
    """Settings of the benchmark's worker: its own task queue and topics, one TEMU shop."""
    return Settings(
        temporal=TemporalSettings(
            address=stack.temporal_address, namespace=stack.namespace, task_queue=f"bench-{tag}"
        ),
        kafka=KafkaSettings(
            brokers=stack.kafka_brokers,
            wiw_topic=f"bench.wiw.shifts.{tag}",
            advoware_topic=f"bench.advoware.appointments.{tag}",
            deadletter_topic=f"bench.deadletter.{tag}",
            topic_partitions=4,
        ),
        redis=RedisSettings(url=stack.redis_url),
        sync=SyncSettings(days_ahead=1, days_prior=0, timezone="UTC"),
        temu=TemuSettings(
            shops=[local_temu_shop(sim_url, SHOP)],
            rate_limit_qps=LIMIT_QPS,
            orders_topic=f"bench.temu.orders.{tag}",
            inventory_topic=f"bench.temu.inventory.{tag}",
            shipments_topic=f"bench.erp.shipments.{tag}",
            stock_topic=f"bench.erp.stock.{tag}",
        ),
    )


@dataclass
class Bench:
    """Everything the phases share."""

    opts: Options
    settings: Settings
    client: Client
    sim: TemuSimulator
    tag: str
    pids: dict[str, int] = field(default_factory=dict)
    """Service processes by name, whose CPU time is measured per run."""
    results: dict[str, Any] = field(default_factory=dict)

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by this process (the worker) and each service."""
        out = {"bench (worker)": measure.cpu_seconds() or 0.0}
        for name, pid in self.pids.items():
            out[name] = measure.cpu_seconds(pid) or 0.0
        return out


def client_rate() -> float:
    """Requests per second the worker's TEMU client aims for (limit minus its headroom)."""
    return LIMIT_QPS * (1 - DEFAULT_HEADROOM)


async def progress(sim: TemuSimulator, label: str, total: int | None) -> None:
    """Print the simulator's request count every ``PROGRESS_EVERY`` s until cancelled."""
    began = time.perf_counter()
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        try:
            stats = await asyncio.to_thread(sim.stats)
        except Exception:  # only a progress line; the run itself reports failures
            continue
        done = int(stats.get("total_requests", 0))
        of = f" of ~{total:,}" if total else ""
        print(
            f"  {label}: {time.perf_counter() - began:.0f}s, {done:,}{of} TEMU requests, "
            f"{stats.get('rate_limited', 0)} x 4000004",
            flush=True,
        )


async def run_workflow(
    bench: Bench, source: str, params: dict[str, Any], name: str, limit_s: float, expect: int
) -> tuple[SyncAllResult, float]:
    """Start one SyncAllWorkflow, await it (printing progress), return result and wall time.

    Raises:
        BenchFailure: the run took longer than ``limit_s`` or did not complete.

    """
    handle = None
    began = time.perf_counter()
    ticker = asyncio.create_task(progress(bench.sim, name, expect))
    try:
        handle = await bench.client.start_workflow(
            SyncAllWorkflow.run,
            SyncAllInput(source=source, params=params),
            id=f"syncall/{source}/bench-{name}-{bench.tag}",
            task_queue=bench.settings.temporal.task_queue,
        )
        result = await asyncio.wait_for(handle.result(), limit_s)
    except TimeoutError:
        raise BenchFailure(f"{name}: did not finish within {limit_s:.0f} s") from None
    finally:
        ticker.cancel()
    wall = time.perf_counter() - began
    assert isinstance(result, SyncAllResult)
    if result.state != RunState.COMPLETED:
        raise BenchFailure(f"{name}: run ended {result.state}: {result.failed[:3]}")
    return result, wall


def max_in_window(times: list[float], seconds: float = 1.0) -> int:
    """Most arrivals within any ``seconds``-long window [t, t + s)."""
    ordered = sorted(times)
    best = first = 0
    for last, arrived in enumerate(ordered):
        while arrived - ordered[first] >= seconds:
            first += 1
        best = max(best, last - first + 1)
    return best


async def temu_traffic(bench: Bench, wall: float) -> dict[str, Any]:
    """The simulator's view of one phase (its counters were reset before the phase)."""
    stats, times = await asyncio.gather(
        asyncio.to_thread(bench.sim.stats), asyncio.to_thread(bench.sim.request_times)
    )
    total = int(stats["total_requests"])
    span = (max(times) - min(times)) if len(times) > 1 else 0.0
    return {
        "requests": dict(stats["requests"]),
        "total_requests": total,
        "rate_limited_4000004": int(stats["rate_limited"]),
        "error_codes": dict(stats["error_codes"]),
        "max_requests_in_1s_window": int(stats["max_requests_per_second"]),
        "max_requests_in_1s_window_recomputed": max_in_window(times),
        "arrivals_recorded": len(times),
        "requests_per_second_wall": round(rate(total, wall), 2),
        "requests_per_second_active": round(rate(total - 1, span), 2) if span else None,
        "active_seconds": round(span, 2),
        "limit_qps": float(stats["knobs"]["qps"]),
        "client_target_qps": round(client_rate(), 2),
    }


def check_traffic(name: str, traffic: dict[str, Any], problems: list[str]) -> None:
    """The rate limit held: no 4000004, never more than the limit in a second."""
    if traffic["rate_limited_4000004"]:
        problems.append(f"{traffic['rate_limited_4000004']} requests answered 4000004")
    if traffic["max_requests_in_1s_window"] > traffic["limit_qps"]:
        problems.append(
            f"{traffic['max_requests_in_1s_window']} requests in one second "
            f"(limit {traffic['limit_qps']:.0f})"
        )
    if traffic["arrivals_recorded"] != traffic["total_requests"]:
        problems.append(
            f"{name}: the simulator kept {traffic['arrivals_recorded']} of "
            f"{traffic['total_requests']} arrival times: the 1-s window maximum is partial"
        )


async def read_all(reader: TopicReader, expect: int | None, limit_s: float) -> list[Consumed]:
    """Everything published since the last read: ``expect`` messages, then 2 s of quiet."""
    msgs = await asyncio.to_thread(reader.read, 2.0, limit_s, expect)
    msgs += await asyncio.to_thread(reader.read, 2.0, 60.0)
    return msgs


async def orders_first_sync(bench: Bench, reader: TopicReader, seeded: list[str]) -> dict[str, Any]:
    """First sync of the seeded orders; every key once; enrichment exactly as predicted.

    Raises:
        BenchFailure: naming every mismatch.

    """
    n = len(seeded)
    # keyset reading: every page but the last leaves its oldest second to the next request,
    # so a page carries ~99 new orders (more calls where seconds hold several orders)
    list_calls = math.ceil(n / (MAX_PAGE_SIZE - 1))
    expected_calls = list_calls + 0.62 * n
    timeout = max(900.0, 2.5 * expected_calls / client_rate() + 300)
    await asyncio.to_thread(bench.sim.reset_counters)
    cpu_before = bench.cpu()
    result, wall = await run_workflow(
        bench, "temu-orders", {}, "orders-first", timeout, int(expected_calls)
    )
    cpu = {k: round(v - cpu_before.get(k, 0.0), 2) for k, v in bench.cpu().items()}
    traffic = await temu_traffic(bench, wall)
    msgs = await read_all(reader, n, 600.0)

    problems: list[str] = []
    keys = [m.key for m in msgs]
    counts = Counter(keys)
    dups = sum(1 for c in counts.values() if c > 1)
    if dups:
        problems.append(f"{len(keys)} messages but {dups} keys published more than once")
    if set(keys) != set(seeded):
        got, want = set(keys), set(seeded)
        problems.append(
            f"{len(got)} distinct keys published, seeded {len(want)} "
            f"({len(want - got)} missing, {len(got - want)} unexpected)"
        )
    shippable = enriched = 0
    by_status: Counter[int] = Counter()
    for m in msgs:
        data = json.loads(m.value)["data"]
        status = int(data["parentOrderMap"]["parentOrderStatus"])
        by_status[status] += 1
        shippable += status in SHIPPABLE
        enriched += "shipping" in data
    requests = traffic["requests"]
    shipping_calls = int(requests.get(SHIPPING_INFO, 0))
    listed = int(requests.get(ORDER_LIST, 0))
    if enriched != shippable or shipping_calls != shippable:
        problems.append(
            f"{shippable} orders in a shippable status, {enriched} published with an address, "
            f"{shipping_calls} shipping-info calls: expected all three equal"
        )
    if listed != result.records.requests:
        problems.append(f"{listed} list calls, but the run result counts {result.records.requests}")
    if listed > math.ceil(1.1 * list_calls) + 1:
        problems.append(f"{listed} list calls, expected about {list_calls}")
    if result.records.fetched != n or result.records.upserted != n:
        problems.append(
            f"fetched {result.records.fetched}, upserted {result.records.upserted}, expected {n}"
        )
    if result.records.dead_lettered or result.records.deleted:
        problems.append(
            f"{result.records.dead_lettered} dead-lettered, {result.records.deleted} deleted"
        )
    check_traffic("orders first sync", traffic, problems)
    if problems:
        raise BenchFailure("orders first sync: " + "; ".join(problems))

    total = traffic["total_requests"]
    achieved = traffic["requests_per_second_active"] or traffic["requests_per_second_wall"]
    # Without enrichment only the list calls remain; at the same achieved rate (the pass is
    # rate-bound) the wall time shrinks by the share of requests they are.
    without = wall * listed / total if total else 0.0
    return {
        "orders": n,
        "wall_seconds": round(wall, 2),
        "orders_per_second": round(rate(n, wall), 1),
        "pages": result.pages,
        "published": len(msgs),
        "distinct_keys": len(counts),
        "duplicates": dups,
        "by_status": {str(k): v for k, v in sorted(by_status.items())},
        "shippable_orders": shippable,
        "published_with_shipping": enriched,
        "list_calls": listed,
        "shipping_info_calls": shipping_calls,
        "temu": traffic,
        "rate_floor_seconds": round(total / client_rate(), 1),
        "limit_floor_seconds": round(total / LIMIT_QPS, 1),
        "without_enrichment": {
            "requests": listed,
            "estimated_wall_seconds": round(without, 1),
            "estimated_wall_seconds_at_client_rate": round(listed / client_rate(), 1),
            "speedup": round(total / listed, 1) if listed else None,
            "basis": "list calls alone at the achieved request rate (computed, not measured)",
            "achieved_requests_per_second": achieved,
        },
        "cpu_seconds": cpu,
    }


async def orders_no_change(
    bench: Bench, reader: TopicReader, n: int, days_back: int | None = None
) -> dict[str, Any]:
    """A re-sync that publishes nothing: from the checkpoint (reads ~nothing), or with
    ``days_back`` a re-read of the whole window (every list page, no enrichment: new orders
    only are enriched, and none is new).

    Raises:
        BenchFailure: something was published or enriched.

    """
    params = {} if days_back is None else {"days_back": days_back}
    name = "orders-nochange" if days_back is None else "orders-reread"
    await asyncio.to_thread(bench.sim.reset_counters)
    result, wall = await run_workflow(bench, "temu-orders", params, name, 900.0, 0)
    traffic = await temu_traffic(bench, wall)
    msgs = await read_all(reader, None, 60.0)
    problems: list[str] = []
    if msgs or result.records.upserted:
        problems.append(
            f"published {len(msgs)} messages ({result.records.upserted} upserts) "
            "although nothing changed"
        )
    if traffic["requests"].get(SHIPPING_INFO):
        problems.append(f"{traffic['requests'][SHIPPING_INFO]} shipping-info calls")
    if days_back is not None and result.records.fetched != n:
        problems.append(f"re-read {result.records.fetched} orders, expected {n}")
    check_traffic(name, traffic, problems)
    if problems:
        raise BenchFailure(f"{name}: " + "; ".join(problems))
    return {
        "orders": n,
        "params": params,
        "wall_seconds": round(wall, 2),
        "fetched": result.records.fetched,
        "published": len(msgs),
        "pages": result.pages,
        "list_calls": int(traffic["requests"].get(ORDER_LIST, 0)),
        "list_calls_in_result": result.records.requests,
        "temu": traffic,
    }


def publish_stock(brokers: str, topic: str, levels: dict[str, int]) -> None:
    """Play the ERP: desired stock per seller SKU on the stock topic."""
    producer = Producer({"bootstrap.servers": brokers, "acks": "all", "linger.ms": 20})
    for sku, stock in levels.items():
        producer.produce(topic, key=sku.encode(), value=json.dumps({"stock": stock}).encode())
    left = producer.flush(30)
    if left:
        raise BenchFailure(f"{left} desired-stock messages not delivered to {topic}")


async def inventory_full(bench: Bench, reader: TopicReader) -> dict[str, Any]:
    """Seed a catalogue, publish desired stock (a share different), run mode=full, verify.

    Raises:
        BenchFailure: naming every mismatch.

    """
    opts, sim = bench.opts, bench.sim
    began = time.perf_counter()
    await asyncio.to_thread(sim.seed_stock, opts.goods, opts.skus_per_goods, SEED)
    catalogue = await asyncio.to_thread(sim.stock)
    rng = random.Random(SEED)
    changed = set(rng.sample(range(len(catalogue)), round(len(catalogue) * opts.changed_share)))
    desired: dict[str, int] = {}
    goods_changed: set[int] = set()
    # One edit per product per batch: the work list is the SKU codes in order (creation
    # order) cut into batches of BATCH, so a product straddling two batches may need two.
    edits_expected: set[tuple[int, int]] = set()
    for i, sku in enumerate(catalogue):
        stock = int(sku["stock"])
        if i in changed:
            stock += rng.randint(1, 25)
            goods_changed.add(int(sku["goodsId"]))
            edits_expected.add((i // BATCH, int(sku["goodsId"])))
        desired[str(sku["outSkuSn"])] = stock
    changed_codes = {str(catalogue[i]["outSkuSn"]) for i in changed}
    await asyncio.to_thread(
        publish_stock, bench.settings.kafka.brokers, bench.settings.temu.stock_topic, desired
    )
    setup_seconds = time.perf_counter() - began
    n_skus = len(catalogue)
    batches = math.ceil(n_skus / BATCH)
    expected_calls = batches + len(edits_expected)

    await asyncio.to_thread(sim.reset_counters)
    cpu_before = bench.cpu()
    result, wall = await run_workflow(
        bench,
        "temu-inventory",
        {"mode": "full"},
        "inventory-full",
        max(600.0, 3 * expected_calls / client_rate() + 120),
        expected_calls,
    )
    cpu = {k: round(v - cpu_before.get(k, 0.0), 2) for k, v in bench.cpu().items()}
    traffic = await temu_traffic(bench, wall)
    audit = await read_all(reader, len(changed_codes), 120.0)
    after = {str(s["outSkuSn"]): int(s["stock"]) for s in await asyncio.to_thread(sim.stock)}

    problems: list[str] = []
    applied = result.records.upserted
    if applied != len(changed_codes):
        problems.append(f"applied {applied} stock changes, expected {len(changed_codes)}")
    if result.records.fetched != n_skus or result.records.unchanged != n_skus - len(changed):
        problems.append(
            f"fetched {result.records.fetched}, unchanged {result.records.unchanged}; expected "
            f"{n_skus} and {n_skus - len(changed)}"
        )
    if result.records.dead_lettered:
        problems.append(f"{result.records.dead_lettered} SKUs failed")
    wrong = [sku for sku, stock in desired.items() if after.get(sku) != stock]
    if wrong:
        problems.append(f"{len(wrong)} SKUs at TEMU differ from the desired stock afterwards")
    audit_keys = [m.key for m in audit]
    if sorted(audit_keys) != sorted(changed_codes):
        problems.append(
            f"{len(audit_keys)} audit events ({len(set(audit_keys))} SKUs), "
            f"expected one per changed SKU ({len(changed_codes)})"
        )
    requests = traffic["requests"]
    edits, queries = int(requests.get(STOCK_EDIT, 0)), int(requests.get(STOCK_QUERY, 0))
    if edits != len(edits_expected) or queries != batches:
        problems.append(
            f"{queries} stock queries and {edits} edits, expected {batches} and "
            f"{len(edits_expected)} (one edit per product with a change per batch)"
        )
    check_traffic("inventory full", traffic, problems)
    if problems:
        raise BenchFailure("inventory full: " + "; ".join(problems))
    return {
        "skus": n_skus,
        "goods": opts.goods,
        "skus_per_goods": opts.skus_per_goods,
        "changed_skus": len(changed_codes),
        "goods_with_changes": len(goods_changed),
        "expected_edits": len(edits_expected),
        "setup_seconds": round(setup_seconds, 2),
        "wall_seconds": round(wall, 2),
        "applied": applied,
        "unchanged": result.records.unchanged,
        "applied_per_second": round(rate(applied, wall), 1),
        "applied_per_second_active": (
            round(rate(applied, traffic["active_seconds"]), 1)
            if traffic["active_seconds"]
            else None
        ),
        "skus_checked_per_second": round(rate(n_skus, wall), 1),
        "batches": result.pages,
        "stock_queries": queries,
        "stock_edits": edits,
        "audit_events": len(audit),
        "temu": traffic,
        "rate_floor_seconds": round(traffic["total_requests"] / client_rate(), 1),
        "cpu_seconds": cpu,
    }


def extrapolate(first: dict[str, Any], n: int) -> dict[str, Any]:
    """The first sync of ``REFERENCE_ORDERS`` orders at this run's shippable share and rate."""
    share = first["shippable_orders"] / max(1, n)
    lists = math.ceil(REFERENCE_ORDERS / (MAX_PAGE_SIZE - 1))
    shipping = round(share * REFERENCE_ORDERS)
    per_request = first["wall_seconds"] / max(1, first["temu"]["total_requests"])
    return {
        "orders": REFERENCE_ORDERS,
        "list_calls": lists,
        "shipping_info_calls": shipping,
        "estimated_wall_seconds": round((lists + shipping) * per_request, 1),
        "estimated_wall_seconds_without_enrichment": round(lists * per_request, 1),
        "basis": f"measured {n:,} orders: {share:.1%} shippable, "
        f"{1000 * per_request:.1f} ms of wall time per TEMU request",
    }


async def run_phases(bench: Bench) -> None:
    """Seed, orders first sync + no-change re-sync, then the inventory run."""
    opts, sim = bench.opts, bench.sim
    knobs = await asyncio.to_thread(sim.knobs)
    if float(knobs["qps"]) != LIMIT_QPS:
        raise BenchFailure(f"the simulator's bucket is {knobs['qps']} QPS, expected {LIMIT_QPS}")
    now = int(time.time())
    began = time.perf_counter()
    seeded = await asyncio.to_thread(
        sim.seed_orders, opts.orders, now - SEED_DAYS * 86_400, now - 60, SEED
    )
    bench.results["setup"]["seed_orders_seconds"] = round(time.perf_counter() - began, 3)
    if len(set(seeded)) != opts.orders:
        raise BenchFailure(f"the simulator seeded {len(set(seeded))} orders, not {opts.orders}")
    bench.results["data"] = {
        "orders": opts.orders,
        "seeded_over_days": SEED_DAYS,
        "first_pass_days": FIRST_PASS_DAYS,
        "page_size": MAX_PAGE_SIZE,
        "simulator_knobs": knobs,
    }
    print(f"seeded {opts.orders:,} orders over the last {SEED_DAYS} days", flush=True)

    settings = bench.settings
    bundle = await build_worker(bench.client, settings)
    orders_reader = TopicReader(settings.kafka.brokers, settings.temu.orders_topic)
    audit_reader = TopicReader(settings.kafka.brokers, settings.temu.inventory_topic)
    orders: dict[str, Any] = {}
    bench.results["orders"] = orders
    try:
        async with bundle.worker:
            print("orders: first sync (bounded by the 20 QPS limit) ...", flush=True)
            orders["first_sync"] = await orders_first_sync(bench, orders_reader, seeded)
            if opts.orders != REFERENCE_ORDERS:
                orders["extrapolated"] = extrapolate(orders["first_sync"], opts.orders)
            print("orders: no-change re-sync ...", flush=True)
            orders["no_change"] = await orders_no_change(bench, orders_reader, opts.orders)
            print(f"orders: re-read of {FIRST_PASS_DAYS} days (days_back) ...", flush=True)
            orders["reread"] = await orders_no_change(
                bench, orders_reader, opts.orders, FIRST_PASS_DAYS
            )
            print(
                f"inventory: {opts.goods} goods x {opts.skus_per_goods} SKUs, "
                f"{opts.changed_share:.0%} changed, mode=full ...",
                flush=True,
            )
            bench.results["inventory"] = await inventory_full(bench, audit_reader)
    finally:
        orders_reader.close()
        audit_reader.close()
        await bundle.aclose()


async def run_async(
    opts: Options,
    stack: DevStack,
    sim: TemuSimulator,
    pids: dict[str, int],
    results: dict[str, Any],
) -> None:
    """Connect and run every phase; fill ``results`` as they finish."""
    tag = uuid.uuid4().hex[:8]
    settings = bench_settings(stack, sim.url, tag)
    client = await connect(settings.temporal)
    bench = Bench(opts=opts, settings=settings, client=client, sim=sim, tag=tag, pids=pids)
    bench.results = results
    await run_phases(bench)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenario; print the table and write the JSON. Exit 1 when a check failed."""
    opts = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    began = time.perf_counter()
    results: dict[str, Any] = {
        "scenario": "temu",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "options": {
            "orders": opts.orders,
            "goods": opts.goods,
            "skus_per_goods": opts.skus_per_goods,
            "changed_share": opts.changed_share,
            "shops": 1,
            "limit_qps": LIMIT_QPS,
            "client_headroom": DEFAULT_HEADROOM,
            "simulator": "in-process thread" if opts.sim_in_process else "child process",
        },
        "setup": {},
    }
    return run_scenario(
        results=results,
        label="TEMU",
        simulator=TemuSimulator(in_process=opts.sim_in_process),
        body=lambda stack, sim, pids: asyncio.run(run_async(opts, stack, sim, pids, results)),
        render=render_temu,
        output=opts.output,
        began=began,
        keep_partial=True,
    )
