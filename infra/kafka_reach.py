"""Can the brokers be reached, and which topics do they hold? Asked once, quietly.

librdkafka retries an unreachable bootstrap server forever and logs every attempt to stderr
(hundreds of lines a minute). A command that only needs an answer asks with a silent
logger and a deadline, and turns the first error into one sentence naming ``KAFKA_BROKERS``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

DEFAULT_TIMEOUT = 5.0
"""Seconds to wait for the cluster's metadata; a reachable broker answers in milliseconds."""


class _FirstFailure(logging.Handler):
    """Keeps librdkafka's first log line (why it failed) and prints none of them."""

    def __init__(self) -> None:
        super().__init__()
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.first is None and record.levelno >= logging.WARNING:
            # "FAIL [rdkafka#producer-1] [thrd:h:1/bootstrap]: h:1/bootstrap: Failed to ..."
            self.first = re.sub(r"^\S+ (\[[^\]]*\] )*\[[^\]]*\]: ", "", record.getMessage())


def _quiet_logger() -> tuple[logging.Logger, _FirstFailure]:
    """A logger of librdkafka's lines that prints nothing and remembers the first failure."""
    logger = logging.getLogger("synchub.kafka.reach")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    keep = _FirstFailure()
    logger.addHandler(keep)
    return logger, keep


class KafkaUnavailableError(RuntimeError):
    """The brokers cannot be reached; the message names ``KAFKA_BROKERS`` and the cause."""


class UnknownTopicError(Exception):
    """The topic does not exist on the cluster; the message lists the topics that do."""


def topic_names(
    brokers: str, timeout: float = DEFAULT_TIMEOUT, security: Mapping[str, Any] | None = None
) -> set[str]:
    """The cluster's topics (internal ones excluded), without creating any.

    ``security`` holds the librdkafka SASL/TLS options (``infra.connections.kafka_security``).

    Raises:
        KafkaUnavailableError: no metadata within ``timeout``; names the first error seen.

    """
    logger, failure = _quiet_logger()
    config = {**(security or {}), "bootstrap.servers": brokers, "logger": logger}
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout
    while True:
        try:
            meta = admin.list_topics(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            break
        except KafkaException as exc:
            admin.poll(0)  # hands librdkafka's queued log lines to the quiet logger
            if time.monotonic() < deadline:
                continue
            error = exc.args[0] if exc.args else None
            cause = failure.first or (error.str() if isinstance(error, KafkaError) else str(exc))
        raise KafkaUnavailableError(
            f"cannot reach Kafka at {brokers} (KAFKA_BROKERS) within {timeout:.0f} s: {cause}"
        ) from None
    return {name for name in meta.topics if not name.startswith("__")}


def require_topic(
    brokers: str,
    topic: str,
    timeout: float = DEFAULT_TIMEOUT,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Fail unless ``topic`` exists (metadata only: asking never auto-creates it).

    Raises:
        KafkaUnavailableError: the brokers cannot be reached.
        UnknownTopicError: listing the topics that exist.

    """
    names = topic_names(brokers, timeout, security)
    if topic not in names:
        known = ", ".join(sorted(names)) or "none"
        raise UnknownTopicError(
            f"Kafka topic {topic!r} does not exist on {brokers} (KAFKA_BROKERS); "
            f"topics there: {known}"
        )
