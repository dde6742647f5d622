"""Slice-wise decoding equals one ``orjson.loads``, whatever the array holds (issue 9, case 4)."""

from __future__ import annotations

import random

import orjson
import pytest

from connectors.json_slices import loads_in_slices


def body(n: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    tricky = ["},{", '"},{"', '\\"},{\\"', '{"shifts":[', "]}", "\\\\", "é ✓"]
    shifts = [
        {
            "id": i,
            "notes": rnd.choice(tricky) * rnd.randint(0, 3),
            "breaks": [{"a": j} for j in range(rnd.randint(0, 3))],
            "nested": {"shifts": [{"x": 1}, {"y": [{}, {}]}]},
        }
        for i in range(n)
    ]
    return orjson.dumps(
        {
            "start": "Mon",
            "users": [{"shifts": [{"id": 1}, {"id": 2}]}],
            "shifts": shifts,
            "deleted_ids": [1, 2],
            "sites": [{"id": 3}, {"id": 4}],
        }
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("slice_bytes", [1, 7, 100, 4096])
def test_slices_decode_to_the_same_object(seed: int, slice_bytes: int) -> None:
    raw = body(300, seed)
    assert loads_in_slices(raw, "shifts", slice_bytes) == orjson.loads(raw)


def test_the_key_first_seen_nested_or_absent_or_spaced_still_decodes() -> None:
    raw = orjson.dumps(
        {"users": [{"shifts": [{"a": 1}, {"b": 2}]}] * 50, "shifts": [{"c": 3}] * 50}
    )
    assert loads_in_slices(raw, "shifts", 8) == orjson.loads(raw)
    spaced = b'{"shifts": [' + b", ".join([b'{"a": 1}'] * 200) + b"]}"
    assert loads_in_slices(spaced, "shifts", 8) == orjson.loads(spaced)
    assert loads_in_slices(raw, "other", 8) == orjson.loads(raw)


def test_malformed_json_raises_like_orjson() -> None:
    raw = body(100, 1)
    with pytest.raises(orjson.JSONDecodeError):
        loads_in_slices(raw[:-1], "shifts", 64)
    with pytest.raises(orjson.JSONDecodeError):
        loads_in_slices(raw + b"]", "shifts", 64)
