"""Finding a source's contract simulator: every registered source has one, a gap says what to add."""

from __future__ import annotations

import dataclasses

import pytest

from connectors import REGISTRY
from simulators.contract import ContractSimulator, simulator_for


@pytest.mark.parametrize("source", sorted(REGISTRY))
def test_every_registered_source_has_a_contract_simulator(source: str) -> None:
    assert isinstance(simulator_for(REGISTRY[source]), ContractSimulator)


def test_a_source_without_simulator_is_told_to_name_one() -> None:
    spec = dataclasses.replace(next(iter(REGISTRY.values())), source="new", simulator="")
    with pytest.raises(LookupError, match=r"'new' names no simulator: set simulator="):
        simulator_for(spec)


def test_a_simulator_package_without_contract_module_is_told_to_write_it() -> None:
    spec = dataclasses.replace(next(iter(REGISTRY.values())), source="new", simulator="tests")
    with pytest.raises(LookupError, match=r"tests\.contract does not exist; write it with"):
        simulator_for(spec)
