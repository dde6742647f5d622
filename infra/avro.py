"""Avro values in the Confluent wire format, with schemas registered in a Schema Registry.

The wire format: magic byte ``0``, the schema id as a 4-byte big-endian integer, then the
Avro binary encoding of the value (``fastavro``, schemaless). Schemas live in the repository
(``schemas/avro/<source>.avsc``) and are registered at worker start under the subject
``<topic>-value`` (the registry's default TopicNameStrategy), through the registry's REST API
with httpx; a registry that already holds the schema answers with its existing id.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fastavro
import httpx

AVRO_SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "avro"
MAGIC = b"\x00"
MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


def avro_schema(source: str) -> dict[str, Any] | None:
    """The repository's Avro schema of ``source``'s flat value, if it has one."""
    path = AVRO_SCHEMAS / f"{source}.avsc"
    return json.loads(path.read_text()) if path.exists() else None


async def register_schema(
    client: httpx.AsyncClient, url: str, subject: str, schema: Mapping[str, Any]
) -> int:
    """Register ``schema`` under ``subject``; returns its id (the existing one if known).

    Raises:
        RuntimeError: the registry did not answer or refused the schema; the message names
            ``SCHEMA_REGISTRY_URL`` and the registry's answer (the worker does not start).

    """
    endpoint = f"{url.rstrip('/')}/subjects/{subject}/versions"
    try:
        reply = await client.post(
            endpoint,
            content=json.dumps({"schema": json.dumps(schema)}),
            headers={"Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE},
        )
    except httpx.HTTPError as exc:
        raise RuntimeError(
            f"Schema Registry at SCHEMA_REGISTRY_URL={url} unreachable: {exc}"
        ) from None
    if reply.status_code >= 400:
        raise RuntimeError(
            f"Schema Registry at SCHEMA_REGISTRY_URL={url} refused the schema of subject "
            f"{subject!r}: {reply.status_code} {reply.text[:300]}"
        )
    return int(reply.json()["id"])


class AvroValues:
    """Flat values of sources with an Avro schema, encoded in the Confluent wire format.

    Build with ``AvroValues.start``, which registers every schema once.
    """

    def __init__(self, schemas: Mapping[str, tuple[int, Any]]) -> None:
        self._schemas = dict(schemas)

    @classmethod
    async def start(
        cls, url: str, topics: Mapping[str, str], transport: httpx.AsyncBaseTransport | None = None
    ) -> AvroValues:
        """Register the Avro schema of each source in ``topics`` (source -> topic) that has one.

        Raises:
            RuntimeError: the registry did not answer or refused a schema.

        """
        parsed: dict[str, tuple[int, Any]] = {}
        async with httpx.AsyncClient(timeout=10.0, transport=transport) as client:
            for source, topic in topics.items():
                schema = avro_schema(source)
                if schema is None:
                    continue
                sid = await register_schema(client, url, f"{topic}-value", schema)
                parsed[source] = (sid, fastavro.parse_schema(schema))
        return cls(parsed)

    def encodes(self, source: str) -> bool:
        """True when ``source`` has a registered Avro schema."""
        return source in self._schemas

    def schema_id(self, source: str) -> int:
        """The registry's id of ``source``'s schema."""
        return self._schemas[source][0]

    def encode(self, source: str, value: Mapping[str, Any]) -> bytes:
        """Magic byte, schema id, Avro binary of ``value``."""
        sid, schema = self._schemas[source]
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(struct.pack(">I", sid))
        fastavro.schemaless_writer(buf, schema, dict(value))
        return buf.getvalue()
