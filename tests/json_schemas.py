"""The JSON Schemas of ``schemas/``, loaded once, to validate what synchub published."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        body = json.loads(path.read_text())
        resources.append((body["$id"], Resource.from_contents(body)))
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator of ``schemas/<name>.json`` (references resolved among the schemas)."""
    body = json.loads((SCHEMAS / f"{name}.json").read_text())
    Draft202012Validator.check_schema(body)
    return Draft202012Validator(body, registry=_registry())


def problems(name: str, value: Any) -> list[str]:
    """Every way ``value`` breaks ``schemas/<name>.json`` (empty: it is valid)."""
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '<value>'}: {err.message}"
        for err in validator(name).iter_errors(value)
    ]
