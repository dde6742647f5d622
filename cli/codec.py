"""``codec-server``: decrypt payloads for the Temporal Web UI with the codec keys."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from settings import Settings, SettingsError, TemporalSettings


def cmd_codec_server(args: argparse.Namespace, settings: Settings) -> int:
    """``codec-server``: serve /encode and /decode for the Web UI until Ctrl-C."""
    return run_codec_server(settings.temporal, args.host, args.port, args.cors_origin)


def run_codec_server(
    settings: TemporalSettings, host: str, port: int, origins: Sequence[str] = ()
) -> int:
    """Serve until Ctrl-C with the keys of ``settings``.

    Raises:
        SettingsError: ``SYNCHUB_CODEC_KEYS`` is not set.

    """
    import uvicorn

    from infra.codec_server import DEFAULT_ORIGINS, EncryptionCodec, make_codec_app

    keys, active = settings.codec()
    if not keys:
        raise SettingsError(
            "codec-server needs the keys the worker uses: set SYNCHUB_CODEC_KEYS "
            "(and SYNCHUB_CODEC_ACTIVE_KEY when there are several)"
        )
    app = make_codec_app(EncryptionCodec(keys, active), list(origins) or DEFAULT_ORIGINS)
    print(
        f"codec server on http://{host}:{port} (keys {', '.join(sorted(keys))}, active {active}); "
        f"point the Web UI's codec endpoint here",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
