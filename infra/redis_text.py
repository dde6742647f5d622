"""Redis answers as text: clients built without ``decode_responses`` return bytes."""

from __future__ import annotations

from typing import overload


@overload
def as_text(value: bytes | str) -> str: ...
@overload
def as_text(value: bytes | str | None) -> str | None: ...
def as_text(value: bytes | str | None) -> str | None:
    """``value`` decoded as UTF-8 when Redis gave bytes; ``None`` (a missing key) stays."""
    return value.decode() if isinstance(value, bytes) else value
