"""Packages import each other in one direction: no cycle between top-level packages.

``infra`` holds production adapters: it reads its own settings sections
(``infra.*_settings``) and never the ``settings`` tree (which collects sections from
``infra`` and ``connectors``) or the connector registry, so ``connectors → infra`` and
``settings → infra, connectors`` stay one-way.
"""

from __future__ import annotations

from tests.import_graph import cycles, import_graph, package_graph


def test_no_cycle_between_top_level_packages() -> None:
    assert cycles(package_graph(import_graph())) == []


def test_infra_imports_neither_the_settings_tree_nor_connectors() -> None:
    graph = import_graph()
    bad = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.split(".")[0] == "infra"
        for target in targets
        if target == "settings" or target.split(".")[0] == "connectors"
    )
    assert not bad, f"infra reaches up: {bad}"
