"""synchub's Temporal interceptors: metrics of every activity, Web UI summaries of every run.

``interceptors()`` is what ``infra.temporal.connect`` passes to the client; a worker built on
that client inherits them. Tracing comes from Temporal's own ``TracingInterceptor``: one
trace from the starter (or schedule) through sync-all, the partition, its page activities,
their HTTP calls and Redis round trips, to the ``traceparent`` header of each Kafka message.
"""

from __future__ import annotations

import types
from typing import Any

from temporalio import activity, client, worker
from temporalio.contrib.opentelemetry import TracingInterceptor

from infra.telemetry import METRICS, SOURCE
from models import activity_names
from workflows.interceptors import workflow_interceptor_class

OUTCOMES = ("fetched", "unchanged", "upserted", "deleted", "dead_lettered", "republished")
"""``RecordCounts`` fields counted as ``synchub_records{outcome=...}``."""


def record_activity(
    activity_type: str, arg: Any, result: Any, attempt: int = 1
) -> tuple[str, str, float] | None:
    """Count what an activity reports it did (its result is the only truth, retries included).

    A completed ``finish_partition`` of a whole pass is a successful sync of the partition:
    the freshness gauge restarts from zero. Returns that success (source, partition, unix
    time), which the caller persists, or None.
    """
    if activity_type == activity_names.SYNC_PARTITION_PASS:  # a page activity and a finish in one
        record_activity(activity_names.SYNC_PAGE, arg, getattr(result, "pages", None), attempt)
        finished = getattr(result, "finished", None)
        if finished is None:
            return None
        whole = types.SimpleNamespace(  # the pass finishes only a whole pass
            source=getattr(arg, "source", ""),
            partition=getattr(arg, "partition", ""),
            complete=True,
        )
        return record_activity(activity_names.FINISH_PARTITION, whole, finished, attempt)
    source = str(getattr(arg, "source", "") or "")
    records = getattr(result, "records", None)
    if records is not None and hasattr(records, "fetched"):
        for outcome in OUTCOMES:
            value = getattr(records, outcome, 0)
            if value > 0:
                METRICS.records.add(value, {"source": source, "outcome": outcome})
    if activity_type == activity_names.SYNC_PAGE:
        METRICS.pages.add(int(getattr(result, "pages", 0)), {"source": source})
    elif activity_type == activity_names.FINISH_PARTITION:
        missing = int(getattr(result, "missing", 0) or 0)
        if attempt == 1 and missing:
            METRICS.point_lookups.add(missing, {"source": source})
        if getattr(arg, "complete", False):
            partition = str(getattr(arg, "partition", ""))
            return source, partition, METRICS.freshness.mark(source, partition)
    return None


class _ActivityMetrics(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        arg = input.args[0] if input.args else None
        token = SOURCE.set(str(getattr(arg, "source", "") or ""))
        try:
            result = await super().execute_activity(input)
        finally:
            SOURCE.reset(token)
        info = activity.info()
        success = record_activity(info.activity_type, arg, result, info.attempt)
        if success is not None:  # kept in Redis: a restarted worker still exports it
            await METRICS.freshness.persist(*success)
        return result


class _ClientSummaries(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> Any:
        if input.static_summary is None:
            input.static_summary = run_summary(input.workflow, input.args)
        return await super().start_workflow(input)

    async def create_schedule(self, input: client.CreateScheduleInput) -> Any:
        action = input.schedule.action
        if isinstance(action, client.ScheduleActionStartWorkflow) and not action.static_summary:
            action.static_summary = run_summary(action.workflow, action.args, "scheduled")
        return await super().create_schedule(input)


def run_summary(workflow_name: str, args: Any, how: str = "") -> str | None:
    """The Web UI's one-line summary of a run at its start (sync-all, or one partition)."""
    arg: Any = args[0] if args else None
    source = getattr(arg, "source", None)
    if source is None:
        return None
    if getattr(arg, "partition", None):  # a partition workflow started on its own
        return f"{source} / {arg.partition}"
    what = f"{len(arg.partitions)} partitions" if getattr(arg, "partitions", None) else "all"
    mode = " (resync)" if getattr(arg, "resync", False) else ""
    return f"{source}: {how + ' ' if how else ''}sync of {what}{mode}"


class SynchubInterceptor(client.Interceptor, worker.Interceptor):
    """Activity metrics, run summaries and the workflow-side metadata/skip counter."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        """Run summaries on every start (the starter, schedules, tests)."""
        return _ClientSummaries(next)

    def intercept_activity(
        self, next: worker.ActivityInboundInterceptor
    ) -> worker.ActivityInboundInterceptor:
        """Count each activity's result by source."""
        return _ActivityMetrics(next)

    def workflow_interceptor_class(self, input: worker.WorkflowInterceptorClassInput) -> Any:
        """Details on the run page, and the skipped-run counter."""
        return workflow_interceptor_class(input)


def interceptors() -> list[Any]:
    """Tracing first (its activity span is current while ours counts), then synchub's."""
    return [TracingInterceptor(always_create_workflow_spans=True), SynchubInterceptor()]
