"""A small Confluent-Schema-Registry-compatible endpoint, for tests and the embedded default.

No real Schema Registry installs from PyPI (Confluent's is a Java service, Karapace is not
published there), so this stands in where the real one cannot run. It speaks the part of
the registry's REST API that synchub and Avro consumers use, with the real API's media
type and error shape:

* ``POST /subjects/{subject}/versions`` ``{"schema": "<json>"}`` -> ``{"id": n}``; the same
  schema gets the same id again (under any subject), as the real registry does;
* ``GET /schemas/ids/{id}`` -> ``{"schema": "<json>"}`` (what a consumer fetches to decode);
* ``GET /subjects``, ``GET /subjects/{subject}/versions/latest``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryState:
    """Schemas by id and the versions of each subject."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}

    def register(self, subject: str, schema: str) -> int:
        """Id of ``schema`` (canonical JSON), registered under ``subject`` if new there."""
        canonical = json.dumps(json.loads(schema), sort_keys=True, separators=(",", ":"))
        with self._lock:
            found = next((i for i, s in self.schemas.items() if s == canonical), None)
            if found is None:
                found = len(self.schemas) + 1
                self.schemas[found] = canonical
            versions = self.subjects.setdefault(subject, [])
            if found not in versions:
                versions.append(found)
            return found


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error_code": code, "message": message}, status_code=status, media_type=MEDIA_TYPE
    )


def create_app(state: RegistryState) -> Starlette:
    """The ASGI app serving ``state``."""

    async def register(request: Request) -> JSONResponse:
        try:
            body: Any = await request.json()
            schema = body["schema"]
            json.loads(schema)
        except (ValueError, KeyError, TypeError):
            return _error(422, 42201, "Invalid schema")
        subject = request.path_params["subject"]
        return JSONResponse({"id": state.register(subject, schema)}, media_type=MEDIA_TYPE)

    async def by_id(request: Request) -> JSONResponse:
        schema = state.schemas.get(int(request.path_params["id"]))
        if schema is None:
            return _error(404, 40403, "Schema not found")
        return JSONResponse({"schema": schema}, media_type=MEDIA_TYPE)

    async def subjects(_: Request) -> JSONResponse:
        return JSONResponse(sorted(state.subjects), media_type=MEDIA_TYPE)

    async def latest(request: Request) -> JSONResponse:
        subject = request.path_params["subject"]
        versions = state.subjects.get(subject)
        if not versions:
            return _error(404, 40401, "Subject not found")
        sid = versions[-1]
        return JSONResponse(
            {
                "subject": subject,
                "version": len(versions),
                "id": sid,
                "schema": state.schemas[sid],
            },
            media_type=MEDIA_TYPE,
        )

    return Starlette(
        routes=[
            Route("/subjects/{subject}/versions", register, methods=["POST"]),
            Route("/subjects/{subject}/versions/latest", latest, methods=["GET"]),
            Route("/subjects", subjects, methods=["GET"]),
            Route("/schemas/ids/{id:int}", by_id, methods=["GET"]),
        ]
    )


def make_registry_app() -> tuple[RegistryState, Starlette]:
    """A fresh registry state and its app."""
    state = RegistryState()
    return state, create_app(state)
