"""TEMU's request signature and body: the body is serialized from exactly the signed dict.

``sign`` is an MD5 over every parameter keyed by the app secret
(``reference/upstream-apis.md`` §3.3); nested objects are signed in the order they are sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

COMMON_PARAMS = frozenset({"type", "app_key", "access_token", "timestamp", "data_type", "sign"})
"""Set by the client; business params must not use these names."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sign(app_secret: str, params: Mapping[str, Any]) -> str:
    """TEMU's request signature (official algorithm, reproduces the documented test vector).

    Keys are sorted by ASCII; each pair contributes ``key + value`` where the value is its
    compact JSON with surrounding quotes stripped (strings raw, numbers as digits, lists and
    objects as compact JSON in the order given); the concatenation is wrapped in the secret
    and hashed with MD5, upper-case hex. ``sign`` itself is skipped.

    Args:
        app_secret: the app secret.
        params: every parameter of the request (common and business).
    """
    parts = [k + _dumps(v).strip('"') for k, v in sorted(params.items()) if k != "sign"]
    raw = app_secret + "".join(parts) + app_secret
    return hashlib.md5(raw.encode("utf-8")).hexdigest().upper()


def encode_body(app_secret: str, params: Mapping[str, Any]) -> bytes:
    """The request body: ``params`` plus their ``sign``, serialized from that same dict."""
    body = dict(params)
    body["sign"] = sign(app_secret, body)
    return _dumps(body).encode("utf-8")
