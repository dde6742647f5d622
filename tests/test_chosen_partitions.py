"""The partitions a run names, checked against the configured ones (TEMU shops, Kaufland storefronts)."""

from __future__ import annotations

import pytest

from connectors.base import chosen_partitions
from models.errors import InvalidParamsError


def test_none_named_means_all_in_configured_order() -> None:
    assert chosen_partitions(None, ["de", "cz"], "storefronts", "X") == ["de", "cz"]


def test_named_ones_keep_the_configured_order() -> None:
    assert chosen_partitions(["cz", "de"], ["de", "sk", "cz"], "storefronts", "X") == ["de", "cz"]


def test_unknown_ones_are_named_with_the_setting_that_configures_them() -> None:
    with pytest.raises(InvalidParamsError) as err:
        chosen_partitions(
            ["fr", "de", "at"], ["de"], "Kaufland storefronts", "KAUFLAND_STOREFRONTS"
        )
    assert str(err.value) == (
        "unknown Kaufland storefronts at, fr; configured in KAUFLAND_STOREFRONTS: de"
    )
