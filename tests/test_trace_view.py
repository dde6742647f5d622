"""``starter.py trace``: the spans file written by the exporter, read back as a tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from infra.telemetry import JsonLinesSpanExporter, rotated
from infra.trace_view import load_spans, render_tree, trace_command

ROOT = Path(__file__).resolve().parents[1]


def record_run(path: Path, workflow_id: str, max_bytes: int = 0) -> None:
    """A run's spans as the worker records them (a local provider, not the global one)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path, max_bytes)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "RunWorkflow:SyncAllWorkflow", attributes={"temporalWorkflowID": workflow_id}
    ):
        for page in range(3):
            with tracer.start_as_current_span("sync.page", attributes={"page": page}):
                with tracer.start_as_current_span("kafka.publish"):
                    pass
    provider.shutdown()


def test_tree_of_one_run_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "traces.jsonl"
    record_run(path, "syncall/wiw/a")
    record_run(path, "syncall/wiw/b")
    spans = load_spans(path, "syncall/wiw/a")
    assert len(spans) == 7 and len({s["trace_id"] for s in spans}) == 1
    lines = render_tree(spans).splitlines()
    assert lines[0].startswith("RunWorkflow:SyncAllWorkflow  ")
    assert [ln.strip().split("  ")[0] for ln in lines[1:3]] == ["sync.page", "kafka.publish"]
    assert lines[2].startswith("    kafka.publish  ") and lines[2].endswith(" ms")
    assert trace_command("syncall/wiw/a", path) == 0
    assert "kafka.publish" in capsys.readouterr().out


def test_missing_run_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "traces.jsonl"
    assert trace_command("syncall/wiw/none", path) == 1
    err = capsys.readouterr().err
    assert "syncall/wiw/none" in err and "SYNCHUB_TRACES_FILE" in err


def test_spans_file_rotates_and_a_run_is_read_across_both(tmp_path: Path) -> None:
    probe = tmp_path / "probe.jsonl"
    record_run(probe, "syncall/wiw/a")
    line = probe.stat().st_size // 7
    path = tmp_path / "traces.jsonl"
    limit = 4 * line  # one rotation within a run of 7 spans
    record_run(path, "syncall/wiw/a", max_bytes=limit)
    assert rotated(path).exists()
    assert len(load_spans(path, "syncall/wiw/a")) == 7  # read across both files
    for _ in range(2):  # two more runs: run a's file is rotated away
        record_run(path, "syncall/wiw/b", max_bytes=limit)
    assert load_spans(path, "syncall/wiw/a") == []
    assert path.stat().st_size <= limit + 2 * line


def test_a_cut_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    record_run(path, "syncall/wiw/a")
    with path.open("a") as fh:
        fh.write('{"name": "cut')
    assert len(load_spans(path, "syncall/wiw/a")) == 7


def test_starter_trace_command(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    record_run(path, "syncall/wiw/a")
    env = {**os.environ, "SYNCHUB_TRACES_FILE": str(path)}
    ran = subprocess.run(
        [sys.executable, "starter.py", "trace", "syncall/wiw/a"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[0].startswith("RunWorkflow:SyncAllWorkflow")
    env = {**os.environ, "SYNCHUB_STATE_DIR": str(tmp_path)}  # the default file lives there
    ran = subprocess.run(
        [sys.executable, "starter.py", "trace", "syncall/wiw/a"],
        cwd=ROOT, env={k: v for k, v in env.items() if k != "SYNCHUB_TRACES_FILE"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ran.returncode == 0 and "kafka.publish" in ran.stdout, ran.stderr
    ran = subprocess.run(
        [sys.executable, "starter.py", "trace", "syncall/wiw/other"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ran.returncode == 1 and "no spans of syncall/wiw/other" in ran.stderr
    assert "Traceback" not in ran.stderr
