"""Warming the HTTP stack at worker start leaves nothing for the first request to import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import asyncio, json, sys
import httpx
from connectors.http import warm_http_stack

async def main():
    await warm_http_stack()
    before = set(sys.modules)

    async def answer(reader, writer):
        await reader.readuntil(b"\\r\\n\\r\\n")
        writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/")
    server.close()
    print(json.dumps({"status": response.status_code, "new": sorted(set(sys.modules) - before)}))

asyncio.run(main())
"""


def test_first_request_after_the_warm_up_imports_nothing_from_the_http_stack() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    lazy = [m for m in result["new"] if m.split(".")[0] in {"anyio", "httpcore", "h11", "sniffio"}]
    assert lazy == []
