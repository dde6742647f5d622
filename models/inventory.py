"""Inputs and results of the TEMU inventory activities (counts and cursors, never SKUs)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class InventoryCounts(BaseModel):
    """What reconciling a batch (or a whole shop) did, per SKU."""

    fetched: int = 0
    """SKUs considered (read from the run's work list)."""
    unchanged: int = 0
    """TEMU already showed the desired stock (or our own edit of it is still becoming visible)."""
    applied: int = 0
    """Stock changes TEMU confirmed per SKU (duplicates of an earlier send included)."""
    duplicates: int = 0
    """Of ``applied``: SKUs of edits TEMU answered with a business error (a repeated
    ``requestUniqueKey``, whatever code it uses) that its stock, read back, shows applied."""
    failed: int = 0
    """SKUs whose update TEMU rejected; kept in the retry set for the next run."""
    not_listed: int = 0
    """SKUs the ERP knows but TEMU does not list for this shop."""
    edits: int = 0
    """``bg.local.goods.stock.edit`` calls made (one per product and batch)."""

    def add(self, other: InventoryCounts) -> InventoryCounts:
        """Field-wise sum (models are treated as values)."""
        return InventoryCounts(
            **{n: getattr(self, n) + getattr(other, n) for n in InventoryCounts.model_fields}
        )


class LoadStockInput(BaseModel):
    """Input of ``load_desired_stock``."""

    shop: str
    """Shop id (``TemuShop.id``); the ERP topic is read as group ``synchub-temu-stock-<shop>``."""
    run_token: str
    """Names the run's work list in Redis; kept across continue-as-new."""
    mode: str = "quick"
    """``quick``: SKUs changed since the last run plus last run's failures; ``full``: all."""


class LoadStockResult(BaseModel):
    """How much the run has to do."""

    loaded: int = 0
    """ERP stock messages materialised into Redis by this call."""
    invalid: int = 0
    """ERP messages that were not ``{"stock": <int >= 0>}`` (dead-lettered, committed)."""
    work: int = 0
    """SKUs in the run's work list."""


class ReconcileBatchInput(BaseModel):
    """Input of ``reconcile_stock_batch``: one slice of the run's work list."""

    shop: str
    run_token: str
    cursor: int = 0
    """Index of the batch's first SKU in the work list."""
    batch_size: int = Field(default=100, ge=1, le=100)
    """SKUs per batch (one stock query of at most 100 codes)."""


class ReconcileBatchResult(BaseModel):
    """Counts of one batch and where the next starts."""

    counts: InventoryCounts = Field(default_factory=InventoryCounts)
    next_cursor: int | None = None
    """``None`` when the work list is exhausted."""


class FinishInventoryInput(BaseModel):
    """Input of ``finish_stock_run``: forget the run's work list and batch plans."""

    shop: str
    run_token: str
    batch_size: int = 100
    """Batch size the run used (to name its batch plans)."""
