"""The synchub benchmark: throughput, history size and memory against real services.

Run it with ``python -m bench`` (``make bench``). It starts its own dev stack (Temporal dev
server, tansu, valkey) on free ports with its state in a temporary folder, the When I Work
simulator in a child process, and an in-process worker built by ``worker.build_worker``, then
measures:

1. a first sync of N shifts over D day partitions (every shift must reach Kafka),
2. a re-sync with no upstream change (nothing may be published),
3. a re-sync after 1 % of the shifts changed (exactly those are published),
4. the history size of every workflow involved,
5. the worker's CPU time per record and peak memory,
6. each of 1-3 by the per-record loop users run today (``bench.loop``: slot_sync's, no
   Temporal) against the same simulator, checked the same way, for the ratio,

for each size N (default 10,000 then 100,000), each of 1-3 and 6 three times at sizes up to
20,000 (``--repeats``; ``bench.repeats``) with the medians reported; optionally
(``--naive``) also the first sync and re-sync of a one-activity-per-record Temporal syncer
(``bench.naive``). It prints the side-by-side table and writes ``bench/results/latest.json``.
Nothing is mocked.

``python -m bench advoware`` (``bench.advoware``) is the Advoware scenario: E employees x A
appointments in the Advoware simulator (child process, HMAC token gateway, 20 ms latency per
request), one partition per active employee, 13 date-range pages each; first sync and
no-change re-sync with throughput, history, memory, CPU per process and token requests. It
writes ``bench/results/advoware.json``.

``python -m bench temu`` (``bench.temu``) is the TEMU scenario: one shop against the TEMU
simulator (child process, signed router, 20 QPS bucket): a first order sync of N orders
(default 20,000, bounded by the rate limit) with shipping enrichment and a no-change
re-sync, then a full inventory reconciliation; requests per type, achieved rate vs the
limit, 4000004 answers and the busiest second at the simulator. It writes
``bench/results/temu.json``.
"""
