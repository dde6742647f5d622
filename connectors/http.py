"""HTTP helpers shared by the upstream clients."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from email.utils import parsedate_to_datetime

import httpcore
import httpx

from models import clock

BODY_READ_BYTES = 1024 * 1024
"""Most bytes httpcore asks its socket stream for per read of a response body (its
default: 64 KB). A WIW day is 2-20 MB, and each read is a round of the event loop through
anyio and h11: at 64 KB a 21 MB day cost 26-36 ms of CPU to receive, at 1 MB 15 ms (issue
11; reads still return what has arrived, so small bodies are unaffected)."""


def widen_body_reads() -> None:
    """Let httpcore read response bodies ``BODY_READ_BYTES`` at a time (process-wide).

    httpcore has no per-client setting for it, only this class attribute; every client
    of the process shares it, which is harmless: a read returns what has arrived.
    """
    httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = BODY_READ_BYTES


def retry_after(
    response: httpx.Response, message: str = "", in_text: re.Pattern[str] | None = None
) -> float | None:
    """Seconds the upstream asked us to wait, or ``None`` when it did not say.

    ``Retry-After`` wins (seconds or an HTTP date); otherwise ``in_text`` finds a number of
    seconds in the error message ("Please wait 3 seconds"), since some APIs only say it there.
    """
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(header)
            return max(0.0, (when - clock.now()).total_seconds())
        except (TypeError, ValueError, IndexError):
            pass
    match = in_text.search(message) if in_text is not None else None
    return float(match.group(1)) if match else None


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced by ``***``.

    Upstream error bodies may echo what was sent (a token, a signed parameter), and error
    texts end up in logs, workflow history and dead letters, where secrets must never go.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


async def warm_http_stack() -> None:
    """One real HTTP request to a throwaway local socket: the first upstream call is not slow.

    httpx imports httpcore's connection pool, the anyio backend and h11 on the first request
    of the process; that cost (about 0.5 s on a busy 2-core box) otherwise lands inside the
    first ``sync_page`` of every worker start. Failures are ignored: this is only a warm-up.
    """

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            await client.get(f"http://127.0.0.1:{port}/")
    except (httpx.HTTPError, OSError):  # pragma: no cover - warm-up only
        pass
    finally:
        server.close()
        await server.wait_closed()
