"""Codec server: lets the Temporal Web UI (and ``temporal`` CLI) show decrypted payloads.

The Web UI never holds the keys. With a codec endpoint configured (the dev server's
``--ui-codec-endpoint``, or ``TEMPORAL_CODEC_ENDPOINT`` of a self-hosted UI, or the
namespace's codec setting in Temporal Cloud), the operator's browser POSTs the payloads it
shows to ``<endpoint>/decode`` and gets them back decrypted; ``/encode`` serves the payloads
an operator types (signal or start input). Bodies are ``{"payloads": [...]}`` in protobuf
JSON, as the UI sends them.

Whoever reaches this server reads decrypted history: bind it to loopback (the default) or
put it behind the same authentication as the Web UI, and allow only the UI's origin (CORS).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.json_format import MessageToJson, Parse, ParseError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads

from infra.codec import CodecKeyError, EncryptionCodec

DEFAULT_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
"""The dev server's Web UI; production names its own with ``--cors-origin``."""


def make_codec_app(codec: EncryptionCodec, origins: Sequence[str] = DEFAULT_ORIGINS) -> Starlette:
    """The ASGI app: ``POST /encode``, ``POST /decode``, CORS for ``origins``.

    Args:
        codec: The codec with the keys (the active one is used by ``/encode``).
        origins: Web UI origins allowed to call from the browser (``*`` allows any).

    """

    async def convert(request: Request, encode: bool) -> Response:
        try:
            payloads = Parse(await request.body(), Payloads())
        except (ParseError, UnicodeDecodeError) as exc:
            return JSONResponse({"message": f"body is not {{'payloads': [...]}}: {exc}"}, 400)
        try:
            out = await (codec.encode if encode else codec.decode)(list(payloads.payloads))
        except CodecKeyError as exc:
            return JSONResponse({"message": str(exc)}, 400)
        return Response(MessageToJson(Payloads(payloads=out)), media_type="application/json")

    async def encode(request: Request) -> Response:
        return await convert(request, encode=True)

    async def decode(request: Request) -> Response:
        return await convert(request, encode=False)

    return Starlette(
        routes=[
            Route("/encode", encode, methods=["POST"]),
            Route("/decode", decode, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=list(origins),
                allow_methods=["POST", "OPTIONS"],
                allow_headers=["content-type", "x-namespace", "authorization"],
                allow_credentials="*" not in origins,
            )
        ],
    )
