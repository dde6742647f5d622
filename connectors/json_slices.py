"""Decode a big JSON object whose bulk is one array, in slices that each hold the GIL briefly.

``orjson.loads`` of a 13 MB WIW day (20,000 shifts) is one C call of about 100 ms that holds
the GIL, so even in a thread it stalls the worker's event loop (workflow tasks, heartbeats,
the Redis client) for that long. Here the array is cut at element boundaries into slices of
about ``SLICE_BYTES`` and each slice is decoded on its own: between two slices the loop gets
the GIL back. The result equals ``orjson.loads(content)``.

A cut is found by searching ``},{`` and is proven by decoding: ``[`` + slice + ``]`` is valid
JSON only when the slice starts and ends at elements of that array (a cut inside a string
or a nested value leaves an open string or bracket). The array's start is proven the same
way (the text before it must close as an object with that key first at the top level).
Anything else (no such array, spaces between elements, a slice that does not decode) falls
back to one ``orjson.loads`` of the whole body, which raises for malformed JSON as usual.
"""

from __future__ import annotations

from typing import Any

import orjson

SLICE_BYTES = 512 * 1024
"""About 5 ms of decoding per slice."""


def loads_in_slices(content: bytes, key: str, slice_bytes: int = SLICE_BYTES) -> Any:
    """``orjson.loads(content)``, decoding the top-level array under ``key`` in slices.

    Raises:
        orjson.JSONDecodeError: ``content`` is not JSON.

    """
    if len(content) < 2 * slice_bytes:
        return orjson.loads(content)
    marker = b'"' + key.encode() + b'":['
    at = content.find(marker)
    if at < 0:
        return orjson.loads(content)
    start = at + len(marker)
    try:
        head = orjson.loads(content[:start] + b"]}")  # the key is a top-level key
    except orjson.JSONDecodeError:
        return orjson.loads(content)
    if not isinstance(head, dict) or head.get(key) != []:
        return orjson.loads(content)
    items: list[Any] = []
    begin = start
    while True:
        cut = content.find(b"},{", begin + slice_bytes)
        if cut < 0:
            break
        try:
            items += orjson.loads(b"[" + content[begin : cut + 1] + b"]")
        except orjson.JSONDecodeError:
            return orjson.loads(content)  # not an element boundary (or not JSON at all)
        begin = cut + 2
    rest = orjson.loads(content[:start] + content[begin:])  # the last elements and the tail
    if not isinstance(rest, dict) or not isinstance(rest.get(key), list):
        return orjson.loads(content)
    rest[key] = items + rest[key]
    return rest
