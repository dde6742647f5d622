"""Wire JSON of simulator records, rendered once per state of the record.

A soak serves a 40,000-record page to every run, and the simulator shares one process
(one GIL) with the soak harness: rendering each record's dates and encoding the whole
list again on every request made the simulator, not synchub, the slowest part of a tick
(about 0.5 s of CPU per 40,000-shift response, with every other request queued behind
it). ``WireCache`` keeps each record's encoded JSON beside a stamp of everything its
rendering depends on, so an unchanged record costs one tuple compare, and
``JsonResponse`` splices the kept pieces into the body (``orjson.Fragment``) byte for
byte as ``json.dumps`` would have written them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import orjson
from starlette.responses import JSONResponse


class WireCache:
    """Encoded JSON per record id, valid while the record's stamp is unchanged.

    The stamp is the record's items plus whatever else shapes its rendering (fault knobs
    such as "render this one malformed"), compared by value on every use: a record
    changed in place, by any code path, is rendered again; nothing has to remember to
    invalidate.
    """

    def __init__(self) -> None:
        self._kept: dict[Hashable, tuple[tuple[Any, ...], orjson.Fragment]] = {}

    def get(
        self,
        ident: Hashable,
        record: dict[str, Any],
        shape: tuple[Any, ...],
        render: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> orjson.Fragment:
        """The wire JSON of ``record`` (rendered by ``render`` when its stamp changed)."""
        stamp = (*record.items(), *shape)
        kept = self._kept.get(ident)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        piece = orjson.Fragment(orjson.dumps(render(record)))
        self._kept[ident] = (stamp, piece)
        return piece

    def clear(self) -> None:
        """Forget everything (the state was emptied)."""
        self._kept.clear()


class JsonResponse(JSONResponse):
    """``JSONResponse`` encoded by orjson, so bodies may hold ``WireCache`` pieces.

    orjson writes what Starlette's ``json.dumps(ensure_ascii=False, separators=(",",
    ":"))`` writes for the simulators' bodies (strings, ints, floats, bools, null, lists,
    objects with string keys).
    """

    def render(self, content: Any) -> bytes:
        """The body as compact UTF-8 JSON."""
        return orjson.dumps(content)
