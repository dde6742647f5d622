"""The seams between workflows, activities and the CLI (issue 14, item 4).

Workflows call activities by name with a named options preset; activities register under
those names. The names and the operator's failure text live in neutral modules, so
activities never import workflow code and the CLI imports nothing from a workflow module but
its workflow class. The presets are typed and frozen, and they still schedule exactly what
the recorded histories hold (a changed timeout or retry policy is a change running
workflows would see).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import pkgutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import activities
from connectors import REGISTRY
from models import activity_names
from workflows import options

ROOT = Path(__file__).parents[1]
HISTORIES = sorted((ROOT / "tests" / "replay" / "histories").glob("*.json"))


def imports_of(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, imported names) of every import statement in a file, nested ones included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]


def python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def code_outside_workflows() -> list[Path]:
    """Every module of the project but the workflows' own and the tests."""
    skip = {"workflows", "tests"}
    return [
        p
        for p in sorted(ROOT.rglob("*.py"))
        if not (p.relative_to(ROOT).parts[0] in skip or p.relative_to(ROOT).parts[0][0] == ".")
    ]


def is_workflow_class(obj: object) -> bool:
    return hasattr(obj, "__temporal_workflow_definition")


def test_activities_connectors_models_and_simulators_import_no_workflow_module() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files("activities", "connectors", "models", "simulators")
        for module, names in imports_of(path)
        if module == "workflows" or module.startswith("workflows.")
    ]
    assert offenders == [], "activity names live in models/activity_names.py"


def test_only_workflow_classes_are_imported_from_workflow_modules() -> None:
    # a helper in a workflow module drags the workflow into every importer (the CLI)
    offenders = []
    for path in code_outside_workflows():
        for module, names in imports_of(path):
            if not module.startswith("workflows."):
                continue
            imported = importlib.import_module(module)
            defines_workflows = any(
                is_workflow_class(obj) and obj.__module__ == module
                for obj in vars(imported).values()
            )
            offenders += [
                f"{path.relative_to(ROOT)}: {module}.{name}"
                for name in names
                if defines_workflows and not is_workflow_class(getattr(imported, name))
            ]
    assert offenders == []


def presets() -> dict[str, Any]:
    """Every activity options preset ``workflows.options`` defines, by name."""
    return {
        name: value
        for name, value in vars(options).items()
        if name.isupper()
        and (
            isinstance(value, options.ActivityOptions | options.LocalActivityOptions)
            or (isinstance(value, dict) and "start_to_close_timeout" in value)
        )
    }


def test_presets_are_typed_and_frozen() -> None:
    found = presets()
    assert {"PAGE", "FINISH", "STEP", "LIST_PARTITIONS", "INVENTORY_BATCH", "LOCAL_PASS"} <= set(
        found
    )
    untyped = sorted(name for name, value in found.items() if isinstance(value, dict))
    assert untyped == [], "presets are ActivityOptions, not dicts anyone can change"
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.PAGE.start_to_close_timeout = timedelta(0)  # type: ignore[misc]
    assert isinstance(options.LOCAL_PASS, options.LocalActivityOptions)  # cannot heartbeat


def test_a_preset_passes_only_what_it_sets() -> None:
    config = options.LIST_PARTITIONS.config()
    assert "heartbeat_timeout" not in config  # no heartbeat: the SDK's default, not None
    assert config["retry_policy"] is options.UPSTREAM_RETRY
    assert options.PAGE.config()["heartbeat_timeout"] == timedelta(seconds=20)


PRESET_OF = {
    activity_names.LIST_PARTITIONS: "LIST_PARTITIONS",
    activity_names.SYNC_PAGE: "PAGE",
    activity_names.FINISH_PARTITION: "FINISH",
    activity_names.CONFIRM_SHIPMENTS: "STEP",
    activity_names.LOAD_DESIRED_STOCK: "INVENTORY_BATCH",
    activity_names.RECONCILE_STOCK_BATCH: "INVENTORY_BATCH",
    activity_names.FINISH_STOCK_RUN: "INVENTORY_BATCH",
}
"""Which preset each activity is scheduled with."""


def seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def test_presets_schedule_what_the_recorded_histories_hold() -> None:
    seen = set()
    for path in HISTORIES:
        for event in json.loads(path.read_text())["events"]:
            scheduled = event.get("activityTaskScheduledEventAttributes")
            if scheduled is None:
                continue
            name = scheduled["activityType"]["name"]
            config = getattr(options, PRESET_OF[name]).config()
            policy = config["retry_policy"]
            got = (
                seconds(scheduled["startToCloseTimeout"]),
                seconds(scheduled["heartbeatTimeout"]),
                seconds(scheduled["retryPolicy"]["initialInterval"]),
                seconds(scheduled["retryPolicy"]["maximumInterval"]),
                scheduled["retryPolicy"]["maximumAttempts"],
                scheduled["retryPolicy"]["nonRetryableErrorTypes"],
            )
            assert got == (
                config["start_to_close_timeout"].total_seconds(),
                config.get("heartbeat_timeout", timedelta(0)).total_seconds(),
                policy.initial_interval.total_seconds(),
                policy.maximum_interval.total_seconds() if policy.maximum_interval else 0,
                policy.maximum_attempts,
                list(policy.non_retryable_error_types or []),
            ), f"{path.name}: {name}"
            seen.add(name)
    assert activity_names.SYNC_PAGE in seen and activity_names.LOAD_DESIRED_STOCK in seen


def registered_activity_names() -> set[str]:
    """Names of every activity method the worker's activity classes define."""
    names = set()
    for info in pkgutil.iter_modules(activities.__path__):
        module = importlib.import_module(f"activities.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            for _, fn in inspect.getmembers(cls, inspect.isfunction):
                definition = getattr(fn, "__temporal_activity_definition", None)
                if definition is not None:
                    names.add(definition.name)
    return names


def test_every_activity_name_is_registered_and_named_in_one_place() -> None:
    named = {v for k, v in vars(activity_names).items() if k.isupper() and isinstance(v, str)}
    assert registered_activity_names() == named
    steps = {step for spec in REGISTRY.values() for step in spec.steps}
    assert steps <= named, "a source's steps are activities the worker registers"
