"""``canonical`` (orjson) writes exactly the bytes the stdlib canonical form wrote.

Every stored fingerprint hashed the stdlib form; one byte of difference would republish
every record under a new event id after an upgrade. No services needed.
"""

from __future__ import annotations

import math
import random
import struct
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import orjson
import pytest

from activities.messages import canonical, canonical_stdlib

TRICKY: list[Any] = [
    {"name": "Jürgen Müßig", "city": "Köln", "note": "Straße ÄÖÜ äöü ß €"},
    {"emoji": "😀 \U0001f600", "cjk": "東京", "rtl": "שלום", "sep": "\u2028\u2029", "del": "\x7f"},
    {"ctl": "".join(chr(c) for c in range(32)), "q": '"\\/', "tab": "a\tb\nc\rd\x08e\x0cf"},
    {"floats": [0.1, 0.5, 2.5, 1 / 3, -0.0, 0.0, 1e15, 1e16, 1.5e300, 1e22, 123456.789]},
    {"small": [1e-4, 1e-5, 9.99e-5, 1.5994002884711645e-06, -3.7e-9, 5e-324, 2.2e-308]},
    {"nonfinite": [math.nan, math.inf, -math.inf], "n": None},
    {"nan_only": math.nan},
    {"flat_nan": math.nan, "n": None, "s": "x", "i": 1, "b": False},
    {"n": None, "s": "x", "i": 1, "b": True, "inf": -math.inf},
    {"flat": None, "s": "null", "i": 0, "b": True},
    {"ints": [0, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64, 10**30], "b": [True, False]},
    {"b": {"z": 1, "a": {"y": [1, {"q": None, "p": []}], "x": {}}}, "a": [[], [[]], {}]},
    {"é": 1, "e": 2, "E": 3, "ä": 4, "z": 5, "10": 6, "9": 7, "": 8},
    {1: "int key", 3: "another"},
    {2: "b", 10: "a"},
    {"when": datetime(2026, 11, 29, 5, 0, tzinfo=UTC), "naive": datetime(2026, 1, 2, 3, 4, 5)},
    {"day": date(2026, 2, 28), "t": time(8, 30), "dec": Decimal("1.10"), "u": uuid.UUID(int=7)},
    {"tuple": (1, "a", None), "nested_tuple": ((1.0, 2.0),)},
    {"text_that_looks_like_floats": "e-mail 0.00001 1e-05 null NaN"},
    {"shift": {"id": 2076384596, "break_time": 0.5, "notes": "", "linked_users": None}},
    [],
    {},
    None,
    "top-level string",
    3.0,
]


@pytest.mark.parametrize("value", TRICKY, ids=range(len(TRICKY)))
def test_canonical_is_byte_identical_to_the_stdlib_form(value: Any) -> None:
    assert canonical(value) == canonical_stdlib(value)


def test_canonical_is_identical_for_random_floats_and_strings() -> None:
    rng = random.Random(11)
    for _ in range(5_000):
        bits = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        scaled = rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30)
        text = "".join(
            chr(rng.choice((rng.randrange(0, 0x80), rng.randrange(0x80, 0xD800)))) for _ in range(8)
        )
        value = {"f": bits, "g": scaled, "s": text, "r": round(scaled, rng.randint(0, 6))}
        assert canonical(value) == canonical_stdlib(value), value


def test_plain_orjson_would_differ_so_the_fallbacks_are_exercised() -> None:
    """Guard of the test itself: these values take the fallbacks, not the fast path."""
    opts = orjson.OPT_SORT_KEYS
    assert orjson.dumps({"x": 1e-5}, option=opts) != canonical_stdlib({"x": 1e-5})
    assert orjson.dumps({"x": math.nan}, option=opts) != canonical_stdlib({"x": math.nan})
    when = {"x": datetime(2026, 1, 1, tzinfo=UTC)}
    assert orjson.dumps(when, option=opts) != canonical_stdlib(when)


def test_unencodable_values_fail_as_before() -> None:
    with pytest.raises(TypeError):
        canonical_stdlib({1: "int key", "1": "str key"})  # keys that cannot be sorted
    with pytest.raises(TypeError):
        canonical({1: "int key", "1": "str key"})
    with pytest.raises(UnicodeEncodeError):
        canonical_stdlib({"x": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        canonical({"x": "\ud800"})
