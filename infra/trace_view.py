"""``starter.py trace <workflow-id>``: the span tree of a run, read from the spans file.

The embedded default's worker and starter append their spans as JSON lines to
``.synchub/traces.jsonl`` (``infra.telemetry.JsonLinesSpanExporter``). A run's traces are those
holding a span tagged with its workflow id (Temporal's ``TracingInterceptor`` tags them); the
tree shows every span of those traces with its duration, children in start order.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from infra.telemetry import rotated

WORKFLOW_ID_ATTR = "temporalWorkflowID"
"""The span attribute naming the workflow (set by ``temporalio.contrib.opentelemetry``)."""


class NoTraceError(LookupError):
    """Nothing was recorded for that workflow id; says where it looked and why that may be."""


def load_spans(path: Path, workflow_id: str) -> list[dict[str, Any]]:
    """Every span of the traces that touch ``workflow_id`` (empty when none do)."""
    spans = []
    for part in (rotated(path), path):  # the previous file first: a run may span both
        if not part.exists():
            continue
        with part.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    spans.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a crash mid-write
    wanted = {
        s["trace_id"]
        for s in spans
        if (s.get("attributes") or {}).get(WORKFLOW_ID_ATTR) == workflow_id
    }
    return [s for s in spans if s["trace_id"] in wanted]


def _ms(span: dict[str, Any]) -> float:
    if span.get("end") is None or span.get("start") is None:
        return 0.0
    return (int(span["end"]) - int(span["start"])) / 1e6


def render_tree(spans: list[dict[str, Any]]) -> str:
    """One line per span: indented by depth, name, duration in ms (and ERROR when failed)."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        parent = s.get("parent_id")
        children[parent if parent in ids else None].append(s)
    for kids in children.values():
        kids.sort(key=lambda s: int(s.get("start") or 0))
    lines: list[str] = []

    def walk(span: dict[str, Any], depth: int) -> None:
        flag = "  ERROR" if span.get("status") == "ERROR" else ""
        lines.append(f"{'  ' * depth}{span['name']}  {_ms(span):.1f} ms{flag}")
        for kid in children.get(span["span_id"], []):
            walk(kid, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return "\n".join(lines)


def trace_text(path: Path, workflow_id: str) -> str:
    """The tree of ``workflow_id``'s traces.

    Raises:
        NoTraceError: when the file has no span of that run.
    """
    spans = load_spans(path, workflow_id)
    if not spans:
        raise NoTraceError(
            f"no spans of {workflow_id} in {path} (SYNCHUB_TRACES_FILE); tracing may be off "
            f"(SYNCHUB_TRACING=false), spans may go to OTEL_EXPORTER_OTLP_ENDPOINT instead, "
            f"or the run was started before tracing was on"
        )
    return render_tree(spans)


def trace_command(workflow_id: str, spans_file: Path) -> int:
    """``starter.py trace``: print the tree, or say why there is none (exit 1)."""
    try:
        print(trace_text(spans_file, workflow_id))
    except NoTraceError as exc:
        print(f"starter.py trace: {exc}", file=sys.stderr)
        return 1
    return 0
