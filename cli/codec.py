"""``codec-server``: decrypt payloads for the Temporal Web UI with the codec keys."""

from __future__ import annotations

import argparse

from settings import Settings


def cmd_codec_server(args: argparse.Namespace, settings: Settings) -> int:
    """``codec-server``: serve /encode and /decode for the Web UI until Ctrl-C."""
    from infra.codec_server import run_codec_server

    return run_codec_server(settings.temporal, args.host, args.port, args.cors_origin)
