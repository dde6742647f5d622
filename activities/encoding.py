"""Value formats of change messages: the envelope or the flat record, JSON or Avro; tombstones.

The README's "What is published" section describes these bytes; ``schemas/`` holds a JSON
Schema for every topic's value (and the Avro schemas registered at start), and the tests
validate every published message against them.

* ``envelope`` (default): ``{event_id, source, partition, key, op, fingerprint,
  observed_at, data}``; a delete has ``data: null``.
* ``flat``: the record itself is the value; ``event_id``, ``op`` and ``source`` are in the
  headers only. WIW shifts take slot_sync's shape (its 26 fields in its order, dates in UTC
  ISO 8601, ``linked_users`` null), so slot_sync's consumers read them unchanged. A flat
  delete has no record to carry: it is the tombstone alone (null value, ``op=delete``).
* After a delete event a **tombstone** follows (same key and headers, null value), so a
  compacted topic drops the key; ``KAFKA_TOMBSTONES=false`` turns it off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from infra.publisher import OutMessage

Format = Literal["envelope", "flat"]
FORMATS: tuple[Format, ...] = ("envelope", "flat")

SLOT_SYNC_SHIFT_FIELDS = (
    "account_id",
    "acknowledged",
    "acknowledged_at",
    "actionable",
    "alerted",
    "block_id",
    "break_time",
    "color",
    "created_at",
    "creator_id",
    "end_time",
    "id",
    "instances",
    "is_open",
    "linked_users",
    "location_id",
    "notes",
    "notified_at",
    "position_id",
    "published",
    "published_date",
    "shiftchain_key",
    "site_id",
    "start_time",
    "updated_at",
    "user_id",
)
"""The value slot_sync published (``priv/schemas/slots-value.json``), in its field order."""


def flat_wiw_shift(data: Mapping[str, Any]) -> dict[str, Any]:
    """A published WIW shift in slot_sync's flat shape.

    Dates are already UTC ISO 8601 (``WiwShift.published``); ``linked_users`` is null as
    slot_sync always sent it; fields slot_sync did not publish are left out and a field
    missing on the wire is null.
    """
    out = {name: data.get(name) for name in SLOT_SYNC_SHIFT_FIELDS}
    out["linked_users"] = None
    return out


FLAT_SHAPES: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "wiw": flat_wiw_shift,
}
"""Sources whose flat value is not simply the record's ``data`` (a consumer's shape)."""


class UnencodableRecordError(ValueError):
    """A record its source's Avro schema cannot hold; it is dead-lettered with this reason."""


_AVRO_FIELD = re.compile(r"on field (\w+)")


class ValueEncoder(Protocol):
    """Encodes a flat value of a source for a topic (``infra.avro.AvroValues``)."""

    def encodes(self, source: str) -> bool:
        """True when this encoder has a schema for ``source``."""
        ...

    def encode(self, source: str, value: Mapping[str, Any]) -> bytes:
        """The value's bytes (e.g. the Confluent wire format)."""
        ...


@dataclass(frozen=True)
class Output:
    """How change messages are written: the format per source, tombstones, Avro.

    Built once per worker from ``settings.output``; the default is what synchub always
    wrote, plus tombstones.
    """

    formats: Mapping[str, Format] = field(default_factory=dict)
    """Format per source; a source not named uses the envelope."""
    tombstones: bool = True
    """Publish a tombstone after every delete event."""
    avro: ValueEncoder | None = None
    """Encoder of flat values (Avro through a Schema Registry); None = JSON."""

    def format(self, source: str) -> Format:
        """The value format of ``source``."""
        return self.formats.get(source, "envelope")

    def flat_value(
        self, source: str, data: Mapping[str, Any], json: Callable[[Any], bytes]
    ) -> bytes:
        """The flat value of a record: its consumer's shape, JSON or Avro.

        Raises:
            UnencodableRecordError: the Avro schema cannot hold the record (a field of
                another type than the schema's), naming the field.
        """
        shape = FLAT_SHAPES.get(source)
        value = shape(data) if shape is not None else dict(data)
        if self.avro is not None and self.avro.encodes(source):
            try:
                return self.avro.encode(source, value)
            except (ValueError, TypeError, OverflowError) as exc:
                found = _AVRO_FIELD.search(str(exc))
                raise UnencodableRecordError(
                    f"{found.group(1) if found else 'record'}: does not fit the Avro schema "
                    f"of {source} (schemas/avro/{source}.avsc): {exc}"
                ) from None
        return json(value)


DEFAULT_OUTPUT = Output()


def tombstone(event: OutMessage) -> OutMessage:
    """The tombstone after a delete event: same topic, key and headers, null value."""
    return OutMessage(topic=event.topic, key=event.key, value=None, headers=event.headers)
