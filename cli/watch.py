"""``watch``: print a Kafka topic's messages, one line each, until Ctrl-C (or ``| head``)."""

from __future__ import annotations

import argparse

import orjson

from infra.connections import kafka_security
from infra.consumer import Consumed, tail
from infra.kafka_reach import require_topic
from settings import Settings


def format_message(msg: Consumed, raw: bool = False) -> str:
    """``key <TAB> op <TAB> event_id <TAB> value``: the whole value, decoded JSON on one line.

    ``raw`` shows the value's bytes instead (for Avro, or to see exactly what was sent). A
    value that is not JSON is shown as bytes too; a Kafka tombstone (no value) as ``null``.
    """
    value = repr(msg.value) if raw else _decoded(msg.value)
    return f"{msg.key}\t{msg.headers.get('op', '')}\t{msg.headers.get('event_id', '')}\t{value}"


def _decoded(value: bytes) -> str:
    if not value:
        return "null"
    try:
        return orjson.dumps(orjson.loads(value)).decode()
    except orjson.JSONDecodeError:
        return repr(value)


def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    """``watch``: print a topic's messages until Ctrl-C; a missing topic is an error."""
    security = kafka_security(settings.kafka)
    require_topic(settings.kafka.brokers, args.topic, security=security)
    for msg in tail(
        settings.kafka.brokers,
        args.topic,
        from_beginning=not args.new,
        follow=True,
        security=security,
    ):
        print(format_message(msg, args.raw), flush=True)
    return 0
