"""Readiness probes: when a started service really answers, not merely listens."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import timedelta

from devstack.process import ServiceError


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Tell whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Tell whether ``url`` answers HTTP with a non-5xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


async def _temporal_search_attributes(address: str, namespace: str) -> dict[str, int]:
    """List the custom search attributes of ``namespace`` (name → indexed value type)."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.client import Client

    client = await Client.connect(address, namespace=namespace)
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace), timeout=timedelta(seconds=2)
    )
    return dict(resp.custom_attributes)


def temporal_probe(
    host: str, port: int, namespace: str, search_attributes: Iterable[str], ui_url: str | None
) -> Callable[[], bool]:
    """Ready = the frontend answers RPCs, the search attributes exist, and the UI (if any) serves.

    The search attributes are checked rather than a bare health RPC because the dev server
    registers them through its own frontend once that is up; a workflow started in that gap
    with ``SynchubSource`` set would be rejected. The UI may answer a moment after the frontend.
    """
    wanted = set(search_attributes)
    address = f"{host}:{port}"

    def probe() -> bool:
        if not tcp_open(host, port):
            return False
        registered = asyncio.run(_temporal_search_attributes(address, namespace))
        missing = wanted - set(registered)
        if missing:
            raise ServiceError(f"search attributes not registered yet: {sorted(missing)}")
        return ui_url is None or http_ok(ui_url)

    return probe


def kafka_probe(host: str, port: int) -> Callable[[], bool]:
    """Ready = TCP accepts and a metadata request (list topics) succeeds."""

    def probe() -> bool:
        if not tcp_open(host, port):
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": f"{host}:{port}", "log_level": 3})
        admin.list_topics(timeout=2.0)
        return True

    return probe


def redis_probe(host: str, port: int) -> Callable[[], bool]:
    """Ready = PING answers (valkey accepts connections a moment before it serves)."""

    def probe() -> bool:
        if not tcp_open(host, port):
            return False
        import redis

        client = redis.Redis(host=host, port=port, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            return bool(client.ping())
        finally:
            client.close()

    return probe
