"""Activity names: what workflows call and what the worker's activity classes register.

Workflows call activities by name so the workflow sandbox never imports Kafka, Redis or HTTP
code; activities register under the same names. Both import this module, so neither imports
the other. Every name is recorded in the histories that scheduled it: renaming one breaks the
replay of running workflows, so a name, once released, stays.
"""

from __future__ import annotations

LIST_PARTITIONS = "list_partitions"
"""The partitions (employees, days, shops) of one run of a source."""
SYNC_PAGE = "sync_page"
"""One page: fetch, diff, publish, commit."""
FINISH_PARTITION = "finish_partition"
"""A partition's missing keys resolved (deleted feed or point lookup), and its bookkeeping."""
SYNC_PARTITION_PASS = "sync_partition_pass"
"""Local activity: a partition's first pages (and its finish when they are all of it)."""
CONFIRM_SHIPMENTS = "confirm_shipments"
"""TEMU orders' partition step: confirm the shipments of published orders back to TEMU."""
LOAD_DESIRED_STOCK = "load_desired_stock"
"""TEMU inventory step 1: ERP desired stock -> Redis, and the run's work list."""
RECONCILE_STOCK_BATCH = "reconcile_stock_batch"
"""TEMU inventory steps 2-4 for one batch: read, diff, edit, audit."""
FINISH_STOCK_RUN = "finish_stock_run"
"""TEMU inventory: forget the run's work list."""
