"""Serve an ASGI app over real HTTP on loopback, in a background thread.

Used by the dev stack and by tests so simulators are reached exactly as the real APIs are:
through a socket, by the worker's httpx clients.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import uvicorn


class PortInUseError(RuntimeError):
    """The requested port is taken; the message names it and the setting to change."""


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a free TCP port (tests use this; the dev stack uses fixed defaults)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(host: str, port: int, what: str, setting: str) -> None:
    """Fail with a clear message when ``port`` is already taken.

    Raises:
        PortInUseError: naming the service, the port and the setting to change.
    """
    ensure_ports_free(host, [(port, what, setting)])


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def ensure_ports_free(host: str, checks: Iterable[tuple[int, str, str]]) -> None:
    """Fail naming every taken port at once, so one attempt shows all there is to change.

    Args:
        host: the address the services will bind to.
        checks: ``(port, service, setting)`` per port about to be used.

    Raises:
        PortInUseError: one line per taken port: the service, the port, the setting.
    """
    clashes = [
        f"{what} cannot listen on {host}:{port}: the port is in use; set {setting} to a free port"
        for port, what, setting in checks
        if _port_taken(host, port)
    ]
    if len(clashes) == 1:
        raise PortInUseError(f"{clashes[0]} (or stop whatever uses it).")
    if clashes:
        raise PortInUseError(
            f"{len(clashes)} ports are in use (stop whatever uses them, or change the "
            "settings):\n  " + "\n  ".join(clashes)
        )


class ThreadedServer:
    """A uvicorn server running in a daemon thread with its own event loop."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"sim-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """Base URL without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._server.serve())

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        """Start serving and wait until the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator on {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
