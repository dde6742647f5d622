"""TemuInventoryWorkflow: one shop's stock reconciliation, batch by batch, cursor in state.

Started by ``SyncAllWorkflow`` as the child of source ``temu-inventory`` (id
``sync/temu-inventory/<shop>``, the shop's lock), with ``SyncPartitionInput`` (``params``
carry ``mode`` and ``batch_size``) and returning ``SyncPartitionResult``, so the engine
aggregates it like any partition. It answers the same ``stop``/``pause``/``resume`` signals
and the ``progress`` query as ``SyncPartitionWorkflow``.

Activities are called by name: the workflow sandbox never imports Kafka, Redis or HTTP code.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.steerable import Steerable

with workflow.unsafe.imports_passed_through():
    from models import activity_names
    from models.failures import failure_message
    from models.inventory import (
        FinishInventoryInput,
        InventoryCounts,
        LoadStockInput,
        LoadStockResult,
        ReconcileBatchInput,
        ReconcileBatchResult,
    )
    from models.sync import (
        PartitionCounts,
        Progress,
        RecordCounts,
        RunState,
        StepResult,
        SyncPartitionInput,
        SyncPartitionResult,
    )
    from workflows import options

STEP = "inventory"
"""Name of the step in results: counts appear as ``inventory.applied`` etc. in the summary."""


def _records(c: InventoryCounts) -> RecordCounts:
    """The engine's record counts: fetched = SKUs considered, upserted = changes applied."""
    return RecordCounts(
        fetched=c.fetched, unchanged=c.unchanged, upserted=c.applied, dead_lettered=c.failed
    )


def _steps(c: InventoryCounts) -> dict[str, int]:
    return {"not_listed": c.not_listed, "failed": c.failed, "applied": c.applied}


def _carried(steps: dict[str, int]) -> InventoryCounts:
    fields = set(InventoryCounts.model_fields)
    return InventoryCounts(**{k: v for k, v in steps.items() if k in fields})


@workflow.defn(name="TemuInventoryWorkflow")
class TemuInventoryWorkflow(Steerable):
    """Reconcile one TEMU shop's stock with the ERP's desired stock (mode quick or full)."""

    def __init__(self) -> None:
        super().__init__()
        self._counts = InventoryCounts()
        self._batches = 0
        self._source = ""

    @workflow.run
    async def run(self, input: SyncPartitionInput) -> SyncPartitionResult:
        """Load desired stock, reconcile the work list batch by batch, clean up."""
        self._source = input.source
        shop = input.partition
        mode = str(input.params.get("mode", "quick"))
        batch_size = int(input.params.get("batch_size", 100))
        self._counts = _carried(input.carried_steps)
        self._batches = input.pages
        info = workflow.info()
        run_token = input.run_token or f"{info.workflow_id}/{info.run_id}"
        cursor = int(input.cursor) if input.cursor is not None else None
        if cursor is None:  # the chain's first run: step 1
            try:
                loaded = await workflow.execute_activity(
                    activity_names.LOAD_DESIRED_STOCK,
                    LoadStockInput(shop=shop, run_token=run_token, mode=mode),
                    result_type=LoadStockResult,
                    **options.INVENTORY_BATCH.config(),
                )
            except ActivityError as exc:
                self._state = RunState.FAILED
                raise ApplicationError(
                    f"{input.source}/{shop}: loading desired stock failed: {failure_message(exc)}",
                    type="PartitionFailed",
                    non_retryable=True,
                ) from exc
            workflow.logger.info(
                "%s/%s: %s run over %d SKUs", input.source, shop, mode, loaded.work
            )
            cursor = 0 if loaded.work else None
        next_cursor = cursor
        while next_cursor is not None:
            if await self._hold():
                break
            batch = ReconcileBatchInput(
                shop=shop, run_token=run_token, cursor=next_cursor, batch_size=batch_size
            )
            try:
                result = await workflow.execute_activity(
                    activity_names.RECONCILE_STOCK_BATCH,
                    batch,
                    result_type=ReconcileBatchResult,
                    **options.INVENTORY_BATCH.config(),
                )
            except ActivityError as exc:
                self._state = RunState.FAILED
                await self._finish(shop, run_token, batch_size)
                raise ApplicationError(
                    f"{input.source}/{shop}: stock batch {self._batches + 1} (SKUs from "
                    f"{next_cursor}) failed: {failure_message(exc)}",
                    type="PartitionFailed",
                    non_retryable=True,
                ) from exc
            self._counts = self._counts.add(result.counts)
            self._batches += 1
            next_cursor = result.next_cursor
            if next_cursor is not None and (
                workflow.info().is_continue_as_new_suggested()
                or workflow.info().get_current_history_length() > options.PARTITION_HISTORY_LIMIT
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    input.model_copy(
                        update={
                            "cursor": str(next_cursor),
                            "run_token": run_token,
                            "pages": self._batches,
                            "carried_steps": self._counts.model_dump(),
                        }
                    )
                )
        await self._finish(shop, run_token, batch_size)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._state = RunState.STOPPED if next_cursor is not None else RunState.COMPLETED
        return SyncPartitionResult(
            source=input.source,
            partition=shop,
            state=self._state,
            records=_records(self._counts),
            pages=self._batches,
            steps=[StepResult(name=STEP, counts=_steps(self._counts))],
        )

    async def _finish(self, shop: str, run_token: str, batch_size: int) -> None:
        """Drop the run's work list; a failure here only leaves keys that expire in a day."""
        try:
            await workflow.execute_activity(
                activity_names.FINISH_STOCK_RUN,
                FinishInventoryInput(shop=shop, run_token=run_token, batch_size=batch_size),
                result_type=int,
                **options.INVENTORY_BATCH.config(),
            )
        except ActivityError as exc:
            workflow.logger.warning(
                "%s/%s: cleanup failed (keys expire in a day): %s",
                self._source,
                shop,
                failure_message(exc),
            )

    @workflow.query
    def progress(self) -> Progress:
        """Batches done and SKU counts so far."""
        return Progress(
            source=self._source,
            state=self._state,
            partitions=PartitionCounts(total=1),
            records=_records(self._counts),
            pages=self._batches,
            steps={f"{STEP}.{k}": v for k, v in _steps(self._counts).items()},
        )
