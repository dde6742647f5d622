"""The sync workflows run outside Temporal's sandbox, so this test keeps them deterministic.

Every new workflow run in the sandbox re-imports its module in a fresh namespace: about
13 ms of worker CPU on the event loop's thread per run (py-spy, issue 11), that is one
per partition and per sync-all run, where an unchanged Advoware employee costs about 25 ms
in all. ``SyncAllWorkflow`` and ``SyncPartitionWorkflow`` are therefore defined with
``sandboxed=False``. The sandbox's job (refusing clocks, randomness and I/O in workflow
code) is done here instead, statically: their modules import only Temporal's workflow API,
the shared models and pure standard-library modules, and call no clock, random or I/O
function. The replay tests (``tests/test_replay.py``) check they still decide the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from temporalio import workflow

from workflows.sync_all import SyncAllWorkflow
from workflows.sync_partition import SyncPartitionWorkflow

ROOT = Path(__file__).resolve().parents[1]
UNSANDBOXED = {
    SyncAllWorkflow: ["workflows/sync_all.py"],
    SyncPartitionWorkflow: ["workflows/sync_partition.py", "workflows/steerable.py"],
}
"""Each unsandboxed workflow and every module of its code (the class and its bases)."""
ALLOWED_IMPORTS = (
    "__future__",
    "asyncio",
    "collections",
    "typing",
    "temporalio",
    "models.activity_names",
    "models.failures",
    "models.sync",
    "workflows",
)
"""Modules an unsandboxed workflow module may import (and what they start with)."""
FORBIDDEN_CALLS = {
    "now",
    "utcnow",
    "today",
    "time",
    "monotonic",
    "perf_counter",
    "sleep",
    "random",
    "randint",
    "choice",
    "shuffle",
    "uuid4",
    "uuid1",
    "open",
    "getenv",
    "print",
}
"""Attribute or function names whose call would be non-deterministic or I/O in a workflow
(``workflow.now()`` and ``workflow.uuid4()`` are allowed: they are replay-safe)."""


def _allowed(module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in ALLOWED_IMPORTS)


@pytest.mark.parametrize("wf", list(UNSANDBOXED), ids=lambda wf: wf.__name__)
def test_hot_workflows_run_unsandboxed(wf: type) -> None:
    defn = workflow._Definition.must_from_class(wf)
    assert defn.sandboxed is False, f"{wf.__name__} pays a sandbox re-import per run"


@pytest.mark.parametrize(
    "path", sorted({p for ps in UNSANDBOXED.values() for p in ps}), ids=lambda p: p
)
def test_unsandboxed_workflow_code_has_no_clock_randomness_or_io(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"import {a.name}" for a in node.names if not _allowed(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ""
            if not _allowed(module) and not all(_allowed(f"{module}.{a.name}") for a in node.names):
                problems.append(f"from {module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = (
                func.value.id
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                else ""
            )
            if name in FORBIDDEN_CALLS and owner != "workflow":
                problems.append(f"line {node.lineno}: call of {owner + '.' if owner else ''}{name}")
    assert not problems, f"{path} is not provably deterministic: {problems}"
