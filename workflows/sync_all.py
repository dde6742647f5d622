"""SyncAllWorkflow: list partitions, fan out one child per partition in a sliding window."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from models import activity_names
    from models.failures import failure_message
    from models.sync import (
        MAX_ERRORS,
        DryRunKeys,
        ListPartitionsInput,
        ListPartitionsResult,
        PartitionCounts,
        PartitionError,
        Progress,
        RecordCounts,
        RunState,
        SyncAllInput,
        SyncAllResult,
        SyncPartitionInput,
        SyncPartitionResult,
    )
    from workflows import options


SKIP_HELD_PATCH = "skip-held-partitions"
"""Patch id: runs started before it waited for a child to finish after a refused start,
which hung when the whole batch was refused. Histories without the marker replay the old way."""

START_WITHOUT_WAITING_PATCH = "start-children-without-waiting"
"""Patch id: runs started before it started a batch of children and waited until every
start of the batch was confirmed before refilling a freed slot; the server confirms starts
one after another (~50 ms each on the dev server), so a batch of 20 held every slot for
about a second. Since, each child is started and awaited by its own task. Histories
without the marker replay the old way."""

LIST_LOCALLY_PATCH = "list-partitions-local"
"""Patch id: runs started before it listed partitions in a (regular) activity: one more
workflow task and one activity dispatch per run, ~25 ms of a 10k-shift WIW run's 0.3 s.
Since, the listing is a local activity folded into the run's first workflow task.
Histories without the marker replay the old way."""


# unsandboxed: a sandboxed run re-imports this module (~13 ms of the worker's loop per
# run); tests/test_workflow_sandbox.py checks statically what the sandbox checked
@workflow.defn(name="SyncAllWorkflow", sandboxed=False)
class SyncAllWorkflow:
    """One run of a source: every partition synced by its own child workflow."""

    def __init__(self) -> None:
        self._source = ""
        self._state = RunState.RUNNING
        self._pending: deque[str] = deque()
        self._running: dict[str, workflow.ChildWorkflowHandle[Any, SyncPartitionResult]] = {}
        self._starting: set[str] = set()
        self._started = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._counts = PartitionCounts()
        self._records = RecordCounts()
        self._pages = 0
        self._unchanged_pages = 0
        self._errors: list[PartitionError] = []
        self._skipped: list[str] = []
        self._warnings: list[str] = []
        self._paused = False
        self._stopping = False
        self._tick = 0
        self._noun = "partition"
        self._steps: list[str] = []
        self._child = "SyncPartitionWorkflow"
        self._step_counts: dict[str, int] = {}
        self._notices: list[str] = []
        self._would: DryRunKeys | None = None

    @workflow.run
    async def run(self, input: SyncAllInput) -> SyncAllResult:
        """List (or resume) partitions, run them with bounded concurrency, summarise."""
        self._source = input.source
        self._restore(input)
        self._set_state(RunState.RUNNING)
        self._pending = deque(await self._partitions(input))
        self._counts.pending = len(self._pending)
        await self._fan_out(input)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._finish(input)

    def _restore(self, input: SyncAllInput) -> None:
        """Take over the progress an earlier run of this chain carried into continue-as-new."""
        if input.carried is not None:
            self._counts = input.carried.partitions.model_copy()
            self._records = input.carried.records
            self._pages = input.carried.pages
            self._unchanged_pages = input.carried.unchanged_pages
            self._step_counts = dict(input.carried.steps)
            self._errors = list(input.carried.errors)
            self._skipped = list(input.carried.skipped)
            self._warnings = list(input.carried.warnings)
            self._notices = list(input.carried.notices)
            self._would = input.carried.would

    async def _partitions(self, input: SyncAllInput) -> list[str]:
        """The partitions to run: listed by the activity, or those an earlier run left."""
        if input.remaining is None:
            listing = ListPartitionsInput(
                source=input.source,
                params=input.params,
                only=input.partitions,
                resync=input.resync,
                dry_run=input.dry_run,
            )
            try:
                if workflow.patched(LIST_LOCALLY_PATCH):
                    listed = await workflow.execute_local_activity(
                        activity_names.LIST_PARTITIONS,
                        listing,
                        result_type=ListPartitionsResult,
                        **options.LIST_PARTITIONS_LOCAL.config(),
                    )
                else:
                    listed = await workflow.execute_activity(
                        activity_names.LIST_PARTITIONS,
                        listing,
                        result_type=ListPartitionsResult,
                        **options.LIST_PARTITIONS.config(),
                    )
            except (ActivityError, ApplicationError) as exc:
                # a local activity that failed raises its ApplicationError bare (only a
                # timeout comes wrapped in an ActivityError): both name what went wrong
                self._set_state(RunState.FAILED)
                raise ApplicationError(
                    f"{input.source}: cannot list what to sync: {failure_message(exc)}",
                    type="ListPartitionsFailed",
                    non_retryable=True,
                ) from exc
            remaining = listed.partitions
            self._noun = listed.noun
            self._steps = listed.steps
            self._child = listed.child_workflow
            self._counts.total = len(remaining)
            if listed.cache_voided:
                self._notices.append(listed.cache_voided)
            workflow.logger.info("%s: found %d %ss", input.source, len(remaining), self._noun)
            if listed.warning:
                self._warnings.append(listed.warning)
                workflow.logger.warning("%s", listed.warning)
        else:
            remaining = input.remaining
            self._noun = input.noun
            self._steps = input.steps
            self._child = input.child_workflow
        return remaining

    async def _fan_out(self, input: SyncAllInput) -> None:
        """Keep up to ``max_concurrent`` children running until none is pending or running.

        Returns when everything ran (or a stop left nothing running); continues as new
        when this run has started enough children and none of them is still running.
        """
        without_waiting = workflow.patched(START_WITHOUT_WAITING_PATCH)
        while True:
            batch = self._next_batch(input)
            refused = await self._launch(input, batch, without_waiting)
            if not self._running and not self._starting:
                if self._stopping or not self._pending:
                    return
                if self._should_continue_as_new(input) and not self._paused:
                    # a paused run waits for resume first; signal handlers still sending to
                    # children would be cut off mid-way
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    if self._paused or self._stopping:
                        continue  # a signal handled meanwhile decides first
                    self._continue_as_new(input)
            if refused and workflow.patched(SKIP_HELD_PATCH):
                # a start refused because another run holds the partition frees its slot at
                # once: no child of ours will finish to wake us for it (issue 8, case 2)
                continue
            await self._wake_up()

    def _next_batch(self, input: SyncAllInput) -> list[str]:
        """Pending partitions for the free slots, unless paused, stopping or draining."""
        limit = max(1, input.max_concurrent)
        batch: list[str] = []
        while (
            self._pending
            and len(self._running) + len(self._starting) + len(batch) < limit
            and not self._paused
            and not self._stopping
            and not self._should_continue_as_new(input)
        ):
            batch.append(self._pending.popleft())
            self._counts.pending -= 1
            self._started += 1
        return batch

    async def _launch(self, input: SyncAllInput, batch: list[str], without_waiting: bool) -> bool:
        """Start ``batch`` in one workflow task; True when a start was refused (old path)."""
        if without_waiting:
            # each child started and awaited by its own task: a slot freed while other
            # starts are unconfirmed is refilled at once
            for partition in batch:
                self._starting.add(partition)
                self._keep(self._run_child(input, partition))
            return False
        # histories before START_WITHOUT_WAITING_PATCH: the batch's starts awaited together
        launched = await asyncio.gather(*(self._start_child(input, p) for p in batch))
        for partition, ok in zip(batch, launched, strict=True):
            if ok:
                self._keep(self._await_child(partition))
        return not all(launched)

    def _keep(self, child: Coroutine[Any, Any, None]) -> None:
        """Run ``child`` as a task, referenced until it is done."""
        task = asyncio.create_task(child)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _should_continue_as_new(self, input: SyncAllInput) -> bool:
        """Whether this run has started enough children (or history) for one run."""
        return (
            self._started >= input.children_per_run
            or workflow.info().is_continue_as_new_suggested()
        )

    def _continue_as_new(self, input: SyncAllInput) -> NoReturn:
        """Hand what is pending and the progress so far to a fresh run of this chain."""
        workflow.continue_as_new(
            input.model_copy(
                update={
                    "remaining": list(self._pending),
                    "carried": self.progress(),
                    "noun": self._noun,
                    "steps": self._steps,
                    "child_workflow": self._child,
                }
            )
        )

    async def _wake_up(self) -> None:
        """Wait until a child finished, a start was refused, or a signal changed something."""
        tick = self._tick
        await workflow.wait_condition(lambda: self._tick != tick)

    def _finish(self, input: SyncAllInput) -> SyncAllResult:
        """The final state and the run's summary."""
        if self._stopping:
            self._set_state(RunState.STOPPED)
        elif self._counts.failed or self._errors:  # failed partitions or failed steps
            self._set_state(RunState.FAILED)
        else:
            self._set_state(RunState.COMPLETED)
        workflow.logger.info(
            "%s: %s, partitions %s, records %s",
            input.source,
            self._state,
            self._counts.model_dump(),
            self._records.model_dump(),
        )
        return SyncAllResult(
            source=input.source,
            state=self._state,
            partitions=self._counts,
            records=self._records,
            pages=self._pages,
            unchanged_pages=self._unchanged_pages,
            steps=dict(self._step_counts),
            failed=list(self._errors),
            skipped=self._skipped[-MAX_ERRORS:],
            warnings=list(self._warnings),
            notices=list(self._notices),
            dry_run=input.dry_run,
            would=self._would,
        )

    async def _start_child(self, input: SyncAllInput, partition: str) -> bool:
        """Start the partition's child; an id already running means another run holds it."""
        try:
            handle: workflow.ChildWorkflowHandle[Any, SyncPartitionResult]
            handle = await workflow.start_child_workflow(
                self._child,
                SyncPartitionInput(
                    source=input.source,
                    partition=partition,
                    params=input.params,
                    steps=self._steps,
                    dry_run=input.dry_run,
                    local_pass=True,
                ),
                id=options.partition_workflow_id(input.source, partition),
                result_type=SyncPartitionResult,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(options.SOURCE_ATTR, input.source),
                        SearchAttributePair(options.STATE_ATTR, RunState.RUNNING.value),
                    ]
                ),
            )
        except WorkflowAlreadyStartedError:
            self._counts.skipped += 1
            self._skipped.append(partition)
            workflow.logger.info(
                "%s: %s %s skipped: already being synced", input.source, self._noun, partition
            )
            return False
        self._running[partition] = handle
        self._counts.running += 1
        workflow.logger.info("%s: %s %s started", input.source, self._noun, partition)
        if self._paused:
            await handle.signal("pause")
        return True

    async def _run_child(self, input: SyncAllInput, partition: str) -> None:
        """Start the partition's child and await it; a refused start frees its slot at once."""
        try:
            ok = await self._start_child(input, partition)
        finally:
            self._starting.discard(partition)
        if ok:
            await self._await_child(partition)
        else:
            self._tick += 1  # no child of ours will finish to wake the loop for this slot

    async def _await_child(self, partition: str) -> None:
        handle = self._running[partition]
        try:
            result = await handle
        except ChildWorkflowError as exc:
            self._counts.failed += 1
            self._note_error(partition, failure_message(exc))
            workflow.logger.warning(
                "%s: %s %s failed: %s", self._source, self._noun, partition, failure_message(exc)
            )
        else:
            self._counts.done += 1
            self._records = self._records.add(result.records)
            r = result.records
            workflow.logger.info(
                "%s: %s %s %s: %d fetched, %d unchanged, %d upserted, %d deleted, %d dead-lettered",
                self._source,
                self._noun,
                partition,
                result.state.value.lower(),
                r.fetched,
                r.unchanged,
                r.upserted,
                r.deleted,
                r.dead_lettered,
            )
            self._pages += result.pages
            self._unchanged_pages += result.unchanged_pages
            if result.would is not None:
                self._would = (self._would or DryRunKeys()).add(result.would)
            for step in result.steps:
                for name, n in step.counts.items():
                    key = f"{step.name}.{name}"
                    self._step_counts[key] = self._step_counts.get(key, 0) + n
                if step.error is not None:
                    self._note_error(partition, f"step {step.name} failed: {step.error}")
        finally:
            del self._running[partition]
            self._counts.running -= 1
            self._tick += 1

    def _note_error(self, partition: str, error: str) -> None:
        self._errors.append(PartitionError(partition=partition, error=error))
        del self._errors[:-MAX_ERRORS]

    def _set_state(self, state: RunState) -> None:
        self._state = state
        workflow.upsert_search_attributes(
            [options.SOURCE_ATTR.value_set(self._source), options.STATE_ATTR.value_set(state.value)]
        )

    async def _signal_children(self, signal: str) -> None:
        # by name: every child workflow type answers stop, pause and resume
        async def send(handle: workflow.ChildWorkflowHandle[Any, Any]) -> None:
            try:
                await handle.signal(signal)
            except ApplicationError:
                pass  # the child finished between our look and the signal: nothing to steer

        await asyncio.gather(*(send(h) for h in list(self._running.values())))

    @workflow.signal
    async def stop(self) -> None:
        """Start no new partitions; running ones finish their current page and stop."""
        if self._stopping:
            return
        self._stopping = True
        self._set_state(RunState.STOPPING)
        self._tick += 1
        await self._signal_children("stop")

    @workflow.signal
    async def pause(self) -> None:
        """Start no new partitions and pause running ones after their current page."""
        if self._paused or self._stopping:
            return
        self._paused = True
        self._set_state(RunState.PAUSED)
        self._tick += 1
        await self._signal_children("pause")

    @workflow.signal
    async def resume(self) -> None:
        """Undo ``pause``."""
        if not self._paused:
            return
        self._paused = False
        if not self._stopping:
            self._set_state(RunState.RUNNING)
        self._tick += 1
        await self._signal_children("resume")

    @workflow.query
    def progress(self) -> Progress:
        """State, partition counts, record counts of finished partitions, last errors."""
        return Progress(
            source=self._source,
            state=self._state,
            partitions=self._counts.model_copy(),
            records=self._records,
            pages=self._pages,
            unchanged_pages=self._unchanged_pages,
            steps=dict(self._step_counts),
            errors=list(self._errors),
            skipped=self._skipped[-MAX_ERRORS:],
            warnings=list(self._warnings),
            notices=list(self._notices),
            would=self._would,
        )
