"""An HTTP request tries to import nothing, not even a module that is not installed.

httpcore asks ``import sniffio`` on every request to learn which async library runs it.
Without sniffio installed that import fails each time, after searching every entry of
``sys.path`` (a dozen file-system lookups, through the editable install's finder too):
a soak profile of the worker showed about 8 % of its CPU there, on point lookups. A
failed import leaves ``sys.modules`` as it was, so only a finder that records attempts
sees it.
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

class Recorder:
    tried = []

    def find_spec(self, name, path=None, target=None):
        self.tried.append(name)
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
        await client.get(f"http://127.0.0.1:{port}/")  # the first one may set things up
        sys.meta_path.insert(0, Recorder())
        for _ in range(5):
            response = await client.get(f"http://127.0.0.1:{port}/")
    server.close()
    print(json.dumps({"status": response.status_code, "tried": Recorder.tried}))

asyncio.run(main())
"""


def test_requests_after_the_first_try_to_import_nothing() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    assert result["tried"] == [], f"imports tried on every request: {sorted(set(result['tried']))}"
