"""Workflow interceptor: Web UI metadata and the skipped-run counter, outside the workflows.

Runs inside the sandbox like the workflows themselves: no I/O, only ``workflow.*`` calls.
``set_current_details`` and ``workflow.metric_meter()`` add no commands to the history (the
metric is suppressed while replaying), so recorded histories replay unchanged.

While a run goes on, its details follow it: each finished page (a partition run) or child
(a sync-all run) adds its counts, read from the results the workflow receives anyway, so
the Web UI shows ``wiw: 2 partitions done · 3,000 fetched · ... (RUNNING)`` before the end.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.worker import (
    ExecuteWorkflowInput,
    StartActivityInput,
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


COUNTED = ("fetched", "upserted", "deleted", "dead_lettered")


@dataclass
class _Live:
    """What a running workflow did so far, from the results of its pages or children."""

    head: str = ""
    """``wiw`` (sync-all) or ``wiw/2026-11-24`` (a partition)."""
    fetched: int = 0
    upserted: int = 0
    deleted: int = 0
    dead_lettered: int = 0
    pages: int = 0
    done: int = 0
    failed: int = 0
    children: bool = False

    def finished(self, task: asyncio.Future[Any], child: bool) -> None:
        """A page activity or partition child ended: add its counts, refresh the details."""
        if task.cancelled():
            return
        if task.exception() is not None:
            if child:
                self.children = True
                self.failed += 1
                self.show()
            return
        result = task.result()
        records = getattr(result, "records", None)
        if records is None or not hasattr(records, "fetched"):
            return
        for name in COUNTED:
            setattr(self, name, getattr(self, name) + int(getattr(records, name, 0) or 0))
        if child:
            self.children = True
            self.done += 1
        else:
            self.pages += int(getattr(result, "pages", 0) or 0)
        self.show()

    def show(self) -> None:
        counts = describe_counts(self)
        if self.children:
            noun = "partition" if self.done == 1 else "partitions"
            line = f"{self.head}: {_n(self.done)} {noun} done · {counts} · {_n(self.failed)} failed"
        else:
            line = f"{self.head}: {counts} · {_n(self.pages)} pages"
        workflow.set_current_details(f"{line} (RUNNING)")


class _Outbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, live: _Live) -> None:
        super().__init__(next)
        self._live = live

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        handle = super().start_activity(input)
        if self._live.head:
            handle.add_done_callback(lambda t: self._live.finished(t, child=False))
        return handle

    async def start_child_workflow(self, input: StartChildWorkflowInput) -> Any:
        arg: Any = input.args[0] if input.args else None
        if input.static_summary is None and hasattr(arg, "partition"):
            input.static_summary = f"{arg.source} / {arg.partition}"
        try:
            handle = await super().start_child_workflow(input)
            if self._live.head:
                handle.add_done_callback(lambda t: self._live.finished(t, child=True))
            return handle
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
        self._live = _Live()
        super().init(_Outbound(outbound, self._live))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        arg: Any = input.args[0] if input.args else None
        source = getattr(arg, "source", None)
        if isinstance(source, str):
            partition = getattr(arg, "partition", None)
            self._live.head = f"{source}/{partition}" if partition else source
        result = await super().execute_workflow(input)
        noun = str(getattr(workflow.instance(), "_noun", "partition"))
        line = describe_result(result, noun)
        if line:
            workflow.set_current_details(line)
        return result


def workflow_interceptor_class(_input: WorkflowInterceptorClassInput) -> type[_Inbound]:
    """What ``infra.interceptors.SynchubInterceptor`` hands the worker."""
    return _Inbound
