"""Measurements: workflow history size and activity timings, peak memory of processes."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client


@dataclass
class ActivityTimes:
    """Where the time of one activity type went, summed over its executions in a history."""

    count: int = 0
    """Executions (attempts that completed, failed or timed out)."""
    run_seconds: float = 0.0
    """Sum of started -> closed (time inside the activity)."""
    max_run_seconds: float = 0.0
    """Longest single execution."""
    queue_seconds: float = 0.0
    """Sum of scheduled -> started (waiting for a worker slot or poller)."""


@dataclass
class HistoryStats:
    """Size and timing of one workflow chain (all runs of a continue-as-new chain)."""

    workflow_id: str
    """Workflow id."""
    runs: int = 0
    """Runs in the chain (1 unless it continued as new)."""
    events: int = 0
    """History events over all runs."""
    bytes: int = 0
    """History size in bytes over all runs, as the server reports it."""
    seconds: float = 0.0
    """First event of the first run -> last event of the last run."""
    activities: dict[str, ActivityTimes] = field(default_factory=dict)
    """Per activity type."""
    children: list[tuple[str, str]] = field(default_factory=list)
    """``(workflow_id, first run_id)`` of every child started."""
    workflow_tasks: ActivityTimes = field(default_factory=ActivityTimes)
    """Workflow tasks, timed like activities: scheduled -> started (queue), started ->
    completed (run: the worker replaying and deciding)."""

    def as_json(self) -> dict[str, Any]:
        """JSON-friendly form (children omitted: they are reported on their own)."""
        return {
            "workflow_id": self.workflow_id,
            "runs": self.runs,
            "events": self.events,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "activities": times_json(self.activities),
        }


def times_json(times: dict[str, ActivityTimes]) -> dict[str, dict[str, Any]]:
    """Activity times rounded for JSON, by activity type."""
    out: dict[str, dict[str, Any]] = {}
    for name, t in times.items():
        row = asdict(t)
        for k in ("run_seconds", "max_run_seconds", "queue_seconds"):
            row[k] = round(row[k], 3)
        out[name] = row
    return out


def _when(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime()


def _add_activity_times(events: list[HistoryEvent], into: dict[str, ActivityTimes]) -> None:
    """Sum scheduled -> started -> closed per activity type."""
    kinds: dict[int, str] = {}
    scheduled: dict[int, datetime] = {}
    started: dict[int, datetime] = {}
    closers = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    }
    for ev in events:
        if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = ev.activity_task_scheduled_event_attributes
            kinds[ev.event_id] = attrs.activity_type.name
            scheduled[ev.event_id] = _when(ev)
        elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            sid = ev.activity_task_started_event_attributes.scheduled_event_id
            started[sid] = _when(ev)
        elif ev.event_type in closers:
            sid = getattr(ev, closers[ev.event_type]).scheduled_event_id
            if sid not in kinds or sid not in started:
                continue
            times = into.setdefault(kinds[sid], ActivityTimes())
            run = (_when(ev) - started[sid]).total_seconds()
            times.count += 1
            times.run_seconds += run
            times.max_run_seconds = max(times.max_run_seconds, run)
            times.queue_seconds += (started[sid] - scheduled[sid]).total_seconds()


def _add_workflow_task_times(events: list[HistoryEvent], into: ActivityTimes) -> None:
    """Sum scheduled -> started -> completed of the workflow tasks."""
    scheduled: dict[int, datetime] = {}
    started: dict[int, tuple[int, datetime]] = {}
    for ev in events:
        if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            scheduled[ev.event_id] = _when(ev)
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            sid = ev.workflow_task_started_event_attributes.scheduled_event_id
            started[ev.event_id] = (sid, _when(ev))
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            attrs = ev.workflow_task_completed_event_attributes
            if attrs.started_event_id not in started:
                continue
            sid, began = started[attrs.started_event_id]
            run = (_when(ev) - began).total_seconds()
            into.count += 1
            into.run_seconds += run
            into.max_run_seconds = max(into.max_run_seconds, run)
            if sid in scheduled:
                into.queue_seconds += (began - scheduled[sid]).total_seconds()


async def history_stats(client: Client, workflow_id: str, run_id: str | None) -> HistoryStats:
    """Events, bytes, duration and activity times of a workflow chain.

    Follows continue-as-new from ``run_id`` (the first run) to the last run.

    Args:
        client: Temporal client.
        workflow_id: Workflow id.
        run_id: First run of the chain; None = only the latest run of the id.

    Returns:
        The chain's statistics.

    """
    stats = HistoryStats(workflow_id=workflow_id)
    first: datetime | None = None
    last: datetime | None = None
    current: str | None = run_id
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=current)
        history = await handle.fetch_history()
        desc = await handle.describe()
        events = list(history.events)
        stats.runs += 1
        stats.events += len(events)
        stats.bytes += int(desc.raw_info.history_size_bytes)
        if events:
            first = first or _when(events[0])
            last = _when(events[-1])
        _add_activity_times(events, stats.activities)
        _add_workflow_task_times(events, stats.workflow_tasks)
        nxt: str | None = None
        for ev in events:
            if ev.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                ex = ev.child_workflow_execution_started_event_attributes.workflow_execution
                stats.children.append((ex.workflow_id, ex.run_id))
            elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                nxt = ev.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        if nxt is None or current is None:
            break
        current = nxt
    if first is not None and last is not None:
        stats.seconds = (last - first).total_seconds()
    return stats


def sum_activities(stats: list[HistoryStats]) -> dict[str, ActivityTimes]:
    """Activity times summed over several histories (e.g. every partition of a run)."""
    total: dict[str, ActivityTimes] = defaultdict(ActivityTimes)
    for s in stats:
        for name, t in s.activities.items():
            agg = total[name]
            agg.count += t.count
            agg.run_seconds += t.run_seconds
            agg.max_run_seconds = max(agg.max_run_seconds, t.max_run_seconds)
            agg.queue_seconds += t.queue_seconds
    return dict(total)


# ---- memory ------------------------------------------------------------------------------------


def _status_kib(pid: int | str, field_name: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return None


_peak_before_reset_kib = 0
"""Highest ``VmHWM`` of this process seen before a reset wiped it."""


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS, where Linux allows it.

    The peak seen so far is remembered for ``lifetime_peak_rss_mib``: the reset also lowers
    what ``getrusage`` reports.

    Returns:
        True when per-phase peaks can be measured.

    """
    global _peak_before_reset_kib
    _peak_before_reset_kib = max(_peak_before_reset_kib, _status_kib("self", "VmHWM") or 0)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """Peak resident memory of a process since start (or since ``reset_peak_rss``), MiB."""
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else kib / 1024


def lifetime_peak_rss_mib() -> float:
    """Peak RSS of this process over its whole life, MiB.

    ``getrusage``'s ``ru_maxrss``, or the highest peak seen before a ``reset_peak_rss`` when
    that is higher (the reset lowers ``ru_maxrss`` too).
    """
    kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        _peak_before_reset_kib,
        _status_kib("self", "VmHWM") or 0,
    )
    return kib / 1024


def cpu_seconds(pid: int | str = "self") -> float | None:
    """CPU time (user + system, all threads) a process has used so far, seconds.

    This process's comes from ``time.process_time`` (nanoseconds); another's from
    ``/proc/<pid>/stat``, whose clock ticks are 10 ms: a 60 ms run measured in ticks was
    off by up to a sixth.
    """
    if pid == "self":
        return time.process_time()
    try:
        return _stat_seconds(Path(f"/proc/{pid}/stat"))
    except OSError:
        return None


def _stat_seconds(stat: Path) -> float:
    """User + system CPU seconds in a ``/proc`` ``stat`` file (a process's or a thread's).

    Raises:
        OSError: the file cannot be read (the process or thread is gone).
    """
    fields = stat.read_text().rsplit(") ", 1)[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


THREAD_GROUPS = (
    ("MainThread", "event loop"),
    ("tokio-rt-worker", "Temporal core"),
    ("workflow-proces", "Temporal core"),  # sdk-core's "workflow-processing", cut to 15
    ("temporal_workflow", "workflow threads"),
    ("asyncio_", "to_thread pool"),
    ("rdk:", "Kafka client"),
)
"""Thread name prefixes of this process and the part of the worker each belongs to: the
asyncio loop (activities, the SDK's activation handling, the benchmark's own client calls),
the Temporal SDK's Rust core (gRPC, history, state machines), the threads that run workflow
activations, ``asyncio.to_thread``'s pool and librdkafka's threads."""


def _thread_group(name: str) -> str:
    for prefix, group in THREAD_GROUPS:
        if name.startswith(prefix):
            return group
    return "other"


def thread_cpu(me_first: bool = False) -> dict[str, float] | None:
    """CPU seconds each group of this process's live threads (``THREAD_GROUPS``) used so far.

    Python threads are named by ``threading``, native ones (Rust, librdkafka) by their
    ``comm``. ``/proc/self/task/<tid>/schedstat`` counts nanoseconds; where the kernel lacks
    it the 10 ms ticks of ``stat`` stand in. The calling thread's own time is read with
    ``time.thread_time`` before the others (``me_first``) or after them, so that a reading
    at the start (after) and one at the end (first) leave its own cost out. None off Linux.
    """
    me = threading.get_native_id()
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    try:
        tids = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return None
    out: dict[str, float] = defaultdict(float)
    mine = _thread_group(names.get(me, "MainThread"))
    if me_first:
        out[mine] += time.thread_time()
    for tid in tids:
        if tid == me:
            continue
        task = Path("/proc/self/task", str(tid))
        try:
            name = names.get(tid) or (task / "comm").read_text().strip()
            try:
                seconds = int((task / "schedstat").read_text().split()[0]) / 1e9
            except (OSError, IndexError, ValueError):
                seconds = _stat_seconds(task / "stat")
        except OSError:  # the thread ended meanwhile
            continue
        out[_thread_group(name)] += seconds
    if not me_first:
        out[mine] += time.thread_time()
    return dict(out)


def thread_cpu_ms(
    before: dict[str, float] | None, after: dict[str, float] | None, total_seconds: float
) -> dict[str, float] | None:
    """Milliseconds per thread group between two ``thread_cpu`` readings, largest first.

    What the process used beyond the live threads' sum (threads that ended in between, and
    other threads' time while the readings ran) is added to "other", so the groups add up
    to ``total_seconds``.
    """
    if before is None or after is None:
        return None
    ms = {k: 1000 * (v - before.get(k, 0.0)) for k, v in after.items()}
    ms["other"] = ms.get("other", 0.0) + 1000 * total_seconds - sum(ms.values())
    return {k: round(v, 1) for k, v in sorted(ms.items(), key=lambda kv: -kv[1]) if v >= 0.05}


class CpuMeter:
    """This process's CPU time over a stretch, split by thread, without the cost of looking.

    Reading every thread's time costs about 25 µs per thread (a millisecond in the
    benchmark's process), which would otherwise count as the worker's. ``start`` reads the
    process, then the threads, the calling thread last; ``stop`` reads the calling thread
    first, then the others, then the process. Every thread's stretch then lies inside the
    process's, and the calling thread's time spent reading is taken out of the total.
    """

    def __init__(self) -> None:
        self._process = 0.0
        self._reading = 0.0
        self._threads: dict[str, float] | None = None

    def start(self) -> None:
        self._process = time.process_time()
        began = time.thread_time()
        self._threads = thread_cpu()
        self._reading = time.thread_time() - began

    def stop(self) -> tuple[float, dict[str, float] | None]:
        """CPU seconds since ``start`` and their milliseconds per thread group."""
        began = time.thread_time()
        threads = thread_cpu(me_first=True)
        reading = self._reading + time.thread_time() - began
        total = time.process_time() - self._process - reading
        return total, thread_cpu_ms(self._threads, threads, total)
