"""The codec server as the Temporal Web UI calls it, and the dev server's UI pointed at it.

Real HTTP: the starlette app served by uvicorn, the Web UI of ``temporal server start-dev``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import Payload, Payloads

from cli.codec import run_codec_server
from devstack.services import TEMPORAL, DevStack
from infra.codec import EncryptionCodec
from infra.codec_server import make_codec_app
from settings import SettingsError, TemporalSettings
from simulators.server import ThreadedServer, free_port

ROOT = Path(__file__).resolve().parents[1]
UI = "http://127.0.0.1:8233"
KEY = os.urandom(32)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    srv = ThreadedServer(make_codec_app(EncryptionCodec({"k1": KEY}, "k1"), [UI])).start()
    yield srv
    srv.stop()


def body(*payloads: Payload) -> str:
    return json.dumps(MessageToDict(Payloads(payloads=list(payloads))))


PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"kuerzel":"ZQXJ"}')


def test_encode_then_decode_as_the_web_ui_does(server: ThreadedServer) -> None:
    headers = {"Origin": UI, "X-Namespace": "default", "Content-Type": "application/json"}
    enc = httpx.post(f"{server.url}/encode", content=body(PLAIN), headers=headers)
    assert enc.status_code == 200, enc.text
    assert enc.headers["access-control-allow-origin"] == UI
    [sealed] = enc.json()["payloads"]
    assert "ZQXJ" not in enc.text and sealed["metadata"]["encryption-key-id"] == "azE="  # b"k1"

    dec = httpx.post(f"{server.url}/decode", content=enc.text, headers=headers)
    assert dec.status_code == 200, dec.text
    [back] = dec.json()["payloads"]
    assert back == MessageToDict(PLAIN)


def test_preflight_allows_only_the_ui_origin(server: ThreadedServer) -> None:
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    ok = httpx.options(f"{server.url}/decode", headers={"Origin": UI, **ask})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == UI
    assert "x-namespace" in ok.headers["access-control-allow-headers"].lower()
    other = httpx.options(f"{server.url}/decode", headers={"Origin": "http://evil.test", **ask})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def test_unknown_key_and_bad_body_are_clear_errors(server: ThreadedServer) -> None:
    foreign = EncryptionCodec({"k9": os.urandom(32)}, "k9").encrypt(PLAIN)
    bad = httpx.post(f"{server.url}/decode", content=body(foreign))
    assert bad.status_code == 400
    assert "key id 'k9', which is not in SYNCHUB_CODEC_KEYS" in bad.json()["message"]
    junk = httpx.post(f"{server.url}/decode", content=b"not json")
    assert junk.status_code == 400 and "payloads" in junk.json()["message"]


def test_dev_server_web_ui_uses_the_codec_endpoint(tmp_path: Path) -> None:
    endpoint = "http://127.0.0.1:18234"
    stack = DevStack(
        temporal_port=0,
        ui_port=0,
        state_dir=tmp_path,
        services=[TEMPORAL],
        ui_codec_endpoint=endpoint,
    )
    with stack:
        assert stack.ui_url is not None
        settings = httpx.get(f"{stack.ui_url}/api/v1/settings", timeout=10).json()
    assert settings["Codec"]["Endpoint"] == endpoint, settings


def test_starter_codec_server_command(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCHUB_")}
    proc = subprocess.Popen(
        [sys.executable, "starter.py", "codec-server", "--port", str(port)],
        cwd=ROOT,
        env={**env, "SYNCHUB_CODEC_KEYS": f"k1:{base64.b64encode(KEY).decode()}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "codec server on" in proc.stdout.readline()
        sealed = EncryptionCodec({"k1": KEY}, "k1").encrypt(PLAIN)
        for _ in range(50):
            try:
                dec = httpx.post(f"http://127.0.0.1:{port}/decode", content=body(sealed))
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert dec.json()["payloads"] == [MessageToDict(PLAIN)]
    finally:
        proc.terminate()
        proc.wait(10)
    with pytest.raises(SettingsError, match="set SYNCHUB_CODEC_KEYS"):
        run_codec_server(TemporalSettings(), "127.0.0.1", port)  # main() prints it, exit 2
