"""Workflow interceptor: Web UI metadata and the skipped-run counter, outside the workflows.

Runs inside the sandbox like the workflows themselves: no I/O, only ``workflow.*`` calls.
``set_current_details`` and ``workflow.metric_meter()`` add no commands to the history (the
metric is suppressed while replaying), so recorded histories replay unchanged.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.worker import (
    ExecuteWorkflowInput,
    StartChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

SKIPPED_RUNS = "synchub_skipped_runs"
"""Counter of runs skipped because an earlier one still runs (label ``reason``)."""


def _n(value: int) -> str:
    return f"{value:,}"


def describe_counts(records: Any) -> str:
    """``10,000 fetched · 100 upserted · 2 deleted``: the counts an operator looks for."""
    parts = [f"{_n(records.fetched)} fetched", f"{_n(records.upserted)} upserted"]
    if records.deleted:
        parts.append(f"{_n(records.deleted)} deleted")
    if records.dead_lettered:
        parts.append(f"{_n(records.dead_lettered)} dead-lettered")
    return " · ".join(parts)


def describe_result(result: Any, noun: str = "partition") -> str | None:
    """One line for the Web UI's run page from a sync-all or partition result."""
    records = getattr(result, "records", None)
    if records is None:
        return None
    parts = getattr(result, "partitions", None)
    if parts is not None:  # SyncAllResult
        head = f"{result.source}: {_n(parts.total)} {noun}{'' if parts.total == 1 else 's'}"
        tail = f"{_n(parts.failed)} failed"
        if parts.skipped:
            tail += f" · {_n(parts.skipped)} skipped"
        return f"{head} · {describe_counts(records)} · {tail} ({result.state.value})"
    if hasattr(result, "partition"):  # SyncPartitionResult
        return (
            f"{result.source}/{result.partition}: {describe_counts(records)} · "
            f"{_n(result.pages)} pages ({result.state.value})"
        )
    return None


class _Outbound(WorkflowOutboundInterceptor):
    async def start_child_workflow(self, input: StartChildWorkflowInput) -> Any:
        arg: Any = input.args[0] if input.args else None
        if input.static_summary is None and hasattr(arg, "partition"):
            input.static_summary = f"{arg.source} / {arg.partition}"
        try:
            return await super().start_child_workflow(input)
        except WorkflowAlreadyStartedError:
            source = str(getattr(arg, "source", ""))
            workflow.metric_meter().create_counter(
                SKIPPED_RUNS, "runs skipped: an earlier run still holds the id"
            ).add(1, {"source": source, "reason": "already_running"})
            workflow.logger.warning(
                "skipped run: %s is already running (an earlier run still syncs it)", input.id
            )
            raise


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        result = await super().execute_workflow(input)
        noun = str(getattr(workflow.instance(), "_noun", "partition"))
        line = describe_result(result, noun)
        if line:
            workflow.set_current_details(line)
        return result


def workflow_interceptor_class(_input: WorkflowInterceptorClassInput) -> type[_Inbound]:
    """What ``infra.interceptors.SynchubInterceptor`` hands the worker."""
    return _Inbound
