"""A request through the warmed HTTP stack searches the import path for nothing.

httpcore asks ``import sniffio`` on every request (and every pool close) to learn the async
library; without the package installed each ask is a failed import, a full search of
``sys.path`` that Python never caches: about 5 % of a busy worker's CPU in the Advoware
benchmark (py-spy). The test records every import search during a few real requests.
"""

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

searched = []

class Recorder:
    def find_spec(self, name, path=None, target=None):
        searched.append(name)
        return None

async def main():
    await warm_http_stack()

    async def answer(reader, writer):
        while True:
            try:
                await reader.readuntil(b"\\r\\n\\r\\n")
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n{}")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with httpx.AsyncClient() as client:
        await client.get(f"http://127.0.0.1:{port}/")  # the pool's first connection
        sys.meta_path.insert(0, Recorder())
        statuses = [(await client.get(f"http://127.0.0.1:{port}/")).status_code for _ in range(3)]
    server.close()
    print(json.dumps({"statuses": statuses, "searched": searched}))

asyncio.run(main())
"""


def test_requests_search_the_import_path_for_nothing() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["statuses"] == [200, 200, 200]
    assert result["searched"] == [], f"imports searched per request: {result['searched']}"
