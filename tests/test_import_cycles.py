"""The dev stack is tooling beside production code: no import cycles, no entry points in it."""

from __future__ import annotations

from tests.import_graph import cycles, import_graph, reachable

ENTRY_POINTS = ("starter", "worker", "cli")


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(import_graph()) == []


def test_dev_stack_imports_no_entry_point_and_production_no_dev_stack() -> None:
    graph = import_graph()
    dev = [m for m in graph if m == "devstack" or m.startswith("devstack.")]
    assert dev, "the devstack package is missing"
    for module in dev:
        bad = sorted(t for t in reachable(graph, module) if t.split(".")[0] in ENTRY_POINTS)
        assert not bad, f"{module} imports entry points {bad}"
    for module in graph:
        if module.split(".")[0] in ("infra", "connectors", "activities", "workflows", "models"):
            assert not any(t.startswith("devstack") for t in graph[module]), module
