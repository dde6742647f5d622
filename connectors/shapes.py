"""Describe what an upstream sent by its shape only, for errors that must not leak data.

An answer we cannot parse has to be named in the error so an operator can see what
changed upstream (a wrapper object, a renamed field), but its values may be personal data
or secrets. The shape (JSON types, object keys, list lengths) is enough and is safe.
"""

from __future__ import annotations

from typing import Any

MAX_KEYS = 10
"""Object keys named before the rest are summarised as ``...``."""
MAX_KEY_CHARS = 40
"""Longer keys are cut: a key is a field name, not a place for data."""


def shape_of(value: Any, depth: int = 2) -> str:
    """``value``'s JSON shape in words, e.g. ``an object with keys [Mitarbeiter]``.

    Args:
        value: a decoded JSON value.
        depth: how many levels of lists to look into (their first item).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, dict):
        keys = [str(k)[:MAX_KEY_CHARS] for k in list(value)[:MAX_KEYS]]
        more = ", ..." if len(value) > MAX_KEYS else ""
        return f"an object with keys [{', '.join(keys)}{more}]" if keys else "an empty object"
    if isinstance(value, list):
        if not value:
            return "an empty list"
        text = f"a list of {len(value)} items"
        return f"{text}, the first {shape_of(value[0], depth - 1)}" if depth > 0 else text
    return type(value).__name__
