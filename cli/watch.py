"""``watch``: print a Kafka topic's messages."""

from __future__ import annotations

import argparse

from settings import Settings


def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    """``watch``: print a topic's messages until Ctrl-C."""
    from infra.consumer import tail

    for msg in tail(settings.kafka.brokers, args.topic, from_beginning=not args.new, follow=True):
        print(
            f"{msg.key}\t{msg.headers.get('op', '')}\t{msg.headers.get('event_id', '')}\t"
            f"{msg.value[:200]!r}",
            flush=True,
        )
    return 0
