"""SyncPartitionWorkflow: the pages of one partition, in order, with the cursor in state."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.steerable import Steerable

with workflow.unsafe.imports_passed_through():
    from models import activity_names
    from models.failures import failure_message
    from models.sync import (
        DryRunKeys,
        FinishPartitionInput,
        FinishPartitionResult,
        PartitionCounts,
        PartitionPassInput,
        PartitionPassResult,
        Progress,
        RecordCounts,
        RunState,
        StepInput,
        StepResult,
        SyncPageInput,
        SyncPageResult,
        SyncPartitionInput,
        SyncPartitionResult,
    )
    from workflows import options


# unsandboxed: a sandboxed run re-imports this module (~13 ms of the worker's loop per
# run); tests/test_workflow_sandbox.py checks statically what the sandbox checked
@workflow.defn(name="SyncPartitionWorkflow", sandboxed=False)
class SyncPartitionWorkflow(Steerable):
    """Sync one partition; its workflow id ``sync/<source>/<partition>`` is the lock."""

    def __init__(self) -> None:
        super().__init__()
        self._records = RecordCounts()
        self._pages = 0
        self._unchanged_pages = 0
        self._source = ""

    @workflow.run
    async def run(self, input: SyncPartitionInput) -> SyncPartitionResult:
        """Page until the cursor is exhausted, then resolve missing keys."""
        self._source = input.source
        self._records = input.carried or RecordCounts()
        self._pages = input.pages
        self._unchanged_pages = input.unchanged_pages
        would = input.carried_would
        info = workflow.info()
        run_token = input.run_token or f"{info.workflow_id}/{info.run_id}"
        cursor = input.cursor
        checkpoint = input.checkpoint
        complete = False
        finished: FinishPartitionResult | None = None
        # versioned by the input, not workflow.patched: a patch marker costs every child two
        # more events (the marker and a TemporalChangeVersion search attribute update);
        # a dry run takes the activities, which know how to publish and commit nothing
        local = input.local_pass and not input.dry_run
        if cursor is None and local and not await self._hold():
            first = await self._local_pass(input, run_token)
            self._count(first.pages)
            checkpoint = first.pages.checkpoint or checkpoint
            cursor = first.pages.next_cursor
            complete = cursor is None
            finished = first.finished
        while not complete:
            if await self._hold():
                break
            page = SyncPageInput(
                source=input.source,
                partition=input.partition,
                run_token=run_token,
                params=input.params,
                cursor=cursor,
                dry_run=input.dry_run,
            )
            try:
                result = await workflow.execute_activity(
                    activity_names.SYNC_PAGE,
                    page,
                    result_type=SyncPageResult,
                    **options.PAGE.config(),
                )
            except ActivityError as exc:
                self._state = RunState.FAILED
                raise ApplicationError(
                    f"{input.source}/{input.partition}: page {self._pages + 1} failed: "
                    f"{failure_message(exc)}",
                    type="PartitionFailed",
                    non_retryable=True,
                ) from exc
            self._count(result)
            if result.would is not None:
                would = (would or DryRunKeys()).add(result.would)
            checkpoint = result.checkpoint or checkpoint
            cursor = result.next_cursor
            if cursor is None:
                complete = True
                break
            if (
                workflow.info().is_continue_as_new_suggested()
                or workflow.info().get_current_history_length() > options.PARTITION_HISTORY_LIMIT
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    input.model_copy(
                        update={
                            "cursor": cursor,
                            "run_token": run_token,
                            "carried": self._records,
                            "pages": self._pages,
                            "unchanged_pages": self._unchanged_pages,
                            "checkpoint": checkpoint,
                            "carried_would": would,
                        }
                    )
                )
        run_steps = complete and not input.dry_run  # a step acts on what was committed
        steps = await self._run_steps(input, run_token) if run_steps else []
        finish = FinishPartitionInput(
            source=input.source,
            partition=input.partition,
            run_token=run_token,
            params=input.params,
            complete=complete,
            checkpoint=checkpoint,
            dry_run=input.dry_run,
        )
        try:
            done = finished or await workflow.execute_activity(
                activity_names.FINISH_PARTITION,
                finish,
                result_type=FinishPartitionResult,
                **options.FINISH.config(),
            )
        except ActivityError as exc:
            self._state = RunState.FAILED
            raise ApplicationError(
                f"{input.source}/{input.partition}: resolving missing records failed: "
                f"{failure_message(exc)}",
                type="PartitionFailed",
                non_retryable=True,
            ) from exc
        self._records = self._records.add(done.records)
        if done.would is not None:
            would = (would or DryRunKeys()).add(done.would)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._state = RunState.COMPLETED if complete else RunState.STOPPED
        return SyncPartitionResult(
            source=input.source,
            partition=input.partition,
            state=self._state,
            records=self._records,
            pages=self._pages,
            unchanged_pages=self._unchanged_pages,
            steps=steps,
            would=would,
        )

    def _count(self, result: SyncPageResult) -> None:
        self._records = self._records.add(result.records)
        self._pages += result.pages
        self._unchanged_pages += result.unchanged_pages

    async def _local_pass(self, input: SyncPartitionInput, run_token: str) -> PartitionPassResult:
        """The first pages (and the finish, when they are all) in one local activity."""
        try:
            return await workflow.execute_local_activity(
                activity_names.SYNC_PARTITION_PASS,
                PartitionPassInput(
                    source=input.source,
                    partition=input.partition,
                    run_token=run_token,
                    params=input.params,
                    finish=not input.steps,  # steps run between the pages and the finish
                ),
                result_type=PartitionPassResult,
                **options.LOCAL_PASS.config(),
            )
        except ActivityError as exc:
            self._state = RunState.FAILED
            raise ApplicationError(
                f"{input.source}/{input.partition}: a page failed: {failure_message(exc)}",
                type="PartitionFailed",
                non_retryable=True,
            ) from exc

    async def _run_steps(self, input: SyncPartitionInput, run_token: str) -> list[StepResult]:
        """Run the source's steps in order; a failure is reported and never undoes the pages.

        The pages are committed already (the seed's "separate transactions" rule): a step
        such as confirming shipments may fail on its own and is tried again next run.
        """
        results: list[StepResult] = []
        for name in input.steps:
            step = StepInput(
                source=input.source,
                partition=input.partition,
                run_token=run_token,
                params=input.params,
            )
            try:
                result = await workflow.execute_activity(
                    name, step, result_type=StepResult, **options.STEP.config()
                )
                results.append(result.model_copy(update={"name": name}))
            except ActivityError as exc:
                message = failure_message(exc)
                workflow.logger.warning(
                    "%s/%s: step %s failed: %s", input.source, input.partition, name, message
                )
                results.append(StepResult(name=name, error=message))
        return results

    @workflow.query
    def progress(self) -> Progress:
        """Pages and record counts so far."""
        return Progress(
            source=self._source,
            state=self._state,
            partitions=PartitionCounts(total=1),
            records=self._records,
            pages=self._pages,
            unchanged_pages=self._unchanged_pages,
        )
