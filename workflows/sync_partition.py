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
        self._run_token = ""
        self._cursor: str | None = None
        self._checkpoint: str | None = None
        self._would: DryRunKeys | None = None

    @workflow.run
    async def run(self, input: SyncPartitionInput) -> SyncPartitionResult:
        """Page until the cursor is exhausted, then resolve missing keys."""
        self._resume(input)
        finished: FinishPartitionResult | None = None
        complete = False
        # versioned by the input, not workflow.patched: a patch marker costs every child two
        # more events (the marker and a TemporalChangeVersion search attribute update);
        # a dry run takes the activities, which know how to publish and commit nothing
        local = input.local_pass and not input.dry_run
        if self._cursor is None and local and not await self._hold():
            finished = await self._first_pass(input)
            complete = self._cursor is None
        if not complete:
            complete = await self._page_on(input)
        run_steps = complete and not input.dry_run  # a step acts on what was committed
        steps = await self._run_steps(input, self._run_token) if run_steps else []
        done = finished or await self._finish(input, complete)
        self._records = self._records.add(done.records)
        self._add_would(done.would)
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
            would=self._would,
        )

    def _resume(self, input: SyncPartitionInput) -> None:
        """Take the counts and position carried over a continue-as-new (or a fresh start)."""
        self._source = input.source
        self._records = input.carried or RecordCounts()
        self._pages = input.pages
        self._unchanged_pages = input.unchanged_pages
        self._would = input.carried_would
        info = workflow.info()
        self._run_token = input.run_token or f"{info.workflow_id}/{info.run_id}"
        self._cursor = input.cursor
        self._checkpoint = input.checkpoint

    async def _first_pass(self, input: SyncPartitionInput) -> FinishPartitionResult | None:
        """Run the local pass and take its position; its finish, when it ran one."""
        first = await self._local_pass(input, self._run_token)
        self._count(first.pages)
        self._checkpoint = first.pages.checkpoint or self._checkpoint
        self._cursor = first.pages.next_cursor
        return first.finished

    async def _page_on(self, input: SyncPartitionInput) -> bool:
        """One page activity after another until the cursor ends (``True``) or a stop.

        Continues as new, carrying the position, when the history grows long.
        """
        while not await self._hold():
            result = await self._sync_page(input)
            self._count(result)
            self._add_would(result.would)
            self._checkpoint = result.checkpoint or self._checkpoint
            self._cursor = result.next_cursor
            if self._cursor is None:
                return True
            if self._history_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry(input))
        return False

    async def _sync_page(self, input: SyncPartitionInput) -> SyncPageResult:
        """The next page from the cursor, as an activity; a failure fails the partition."""
        page = SyncPageInput(
            source=input.source,
            partition=input.partition,
            run_token=self._run_token,
            params=input.params,
            cursor=self._cursor,
            dry_run=input.dry_run,
        )
        try:
            return await workflow.execute_activity(
                activity_names.SYNC_PAGE,
                page,
                result_type=SyncPageResult,
                **options.PAGE.config(),
            )
        except ActivityError as exc:
            raise self._failed(input, f"page {self._pages + 1} failed", exc) from exc

    @staticmethod
    def _history_long() -> bool:
        """Whether the server suggests, or our own limit asks for, a continue-as-new."""
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > options.PARTITION_HISTORY_LIMIT
        )

    def _carry(self, input: SyncPartitionInput) -> SyncPartitionInput:
        """The input of the next run: same partition, position and counts so far."""
        return input.model_copy(
            update={
                "cursor": self._cursor,
                "run_token": self._run_token,
                "carried": self._records,
                "pages": self._pages,
                "unchanged_pages": self._unchanged_pages,
                "checkpoint": self._checkpoint,
                "carried_would": self._would,
            }
        )

    async def _finish(self, input: SyncPartitionInput, complete: bool) -> FinishPartitionResult:
        """Resolve missing records (only when complete) and store the checkpoint."""
        finish = FinishPartitionInput(
            source=input.source,
            partition=input.partition,
            run_token=self._run_token,
            params=input.params,
            complete=complete,
            checkpoint=self._checkpoint,
            dry_run=input.dry_run,
        )
        try:
            return await workflow.execute_activity(
                activity_names.FINISH_PARTITION,
                finish,
                result_type=FinishPartitionResult,
                **options.FINISH.config(),
            )
        except ActivityError as exc:
            raise self._failed(input, "resolving missing records failed", exc) from exc

    def _failed(
        self, input: SyncPartitionInput, what: str, exc: ActivityError | ApplicationError
    ) -> ApplicationError:
        """Mark the run failed; the non-retryable error naming the partition and the cause."""
        self._state = RunState.FAILED
        return ApplicationError(
            f"{input.source}/{input.partition}: {what}: {failure_message(exc)}",
            type="PartitionFailed",
            non_retryable=True,
        )

    def _add_would(self, would: DryRunKeys | None) -> None:
        """Add a dry run's keys to those so far (``None`` outside dry runs)."""
        if would is not None:
            self._would = (self._would or DryRunKeys()).add(would)

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
        except (ActivityError, ApplicationError) as exc:  # a local activity's fails bare
            raise self._failed(input, "a page failed", exc) from exc

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
