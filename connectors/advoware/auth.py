"""Advoware's token: the signed token request, its answer, and the bearer auth that reuses it.

The security gateway issues bearer tokens for an HMAC-SHA512-signed request
(``reference/upstream-apis.md`` §1.3); ``AdvowareAuth`` caches the token for every
concurrent call of the worker and gets a new one on a 401.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from models.errors import PermanentError, RetryableError, SyncError

log = logging.getLogger("connectors.advoware.client")

SIGNATURE_SETTINGS = "ADVOWARE_APP_ID/ADVOWARE_API_KEY"
LOGIN_SETTINGS = "ADVOWARE_USER/ADVOWARE_PASSWORD"
KANZLEI_SETTINGS = "ADVOWARE_KANZLEI/ADVOWARE_DATABASE"
PRODUCT_SETTINGS = "ADVOWARE_APP_ID/ADVOWARE_PRODUCT"
ALL_CREDENTIALS = "ADVOWARE_APP_ID/ADVOWARE_API_KEY/ADVOWARE_USER/ADVOWARE_PASSWORD"
EXPIRY_MARGIN_SECONDS = 60.0
"""A token is replaced this long before the gateway says it expires."""

_FRACTION = re.compile(r"\.(\d+)")


def sign(api_key_b64: str, product: int, app_id: str, nonce: str, timestamp: str) -> str:
    """The ``HMAC512Signature`` of a token request.

    ``base64(HMAC-SHA512(base64decode(api_key), "{product}:{app_id}:{nonce}:{timestamp}"))``
    as advoware's own ``IdentityHMAC.php`` computes it. The key is the *decoded* API key.

    Raises:
        ValueError: the API key is not valid base64 (``binascii.Error``).
    """
    key = base64.b64decode(api_key_b64, validate=True)
    message = f"{product}:{app_id}:{nonce}:{timestamp}".encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha512).digest()).decode("ascii")


def request_timestamp(now: datetime | None = None) -> str:
    """A ``RequestTimeStamp``: UTC ISO 8601 with seven fractional digits and ``Z`` (.NET's)."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass(frozen=True)
class _Token:
    value: str
    reuse_until: float
    """``time.monotonic()`` after which a new token is requested before the next call."""


class AdvowareAuth(httpx.Auth):
    """Sends ``Authorization: Bearer``; on a 401 gets a new token once and retries.

    The token is reused until ``token_refresh_seconds`` have passed or until
    ``EXPIRY_MARGIN_SECONDS`` before the expiry the gateway announced, whichever is first
    (for very short-lived tokens the margin shrinks to a tenth of the lifetime, so a token
    can still be used). Concurrent callers that need a token share one request: the cache is
    guarded by an ``asyncio.Lock`` and a caller that waited finds the token the first one got.

    Args:
        issue: requests a new token; returns it and its lifetime in seconds (or ``None``).
        refresh_seconds: longest reuse of one token.
        clock: monotonic clock (tests may inject one).
    """

    def __init__(
        self,
        issue: Callable[[], Awaitable[tuple[str, float | None]]],
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issue = issue
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    @property
    def current(self) -> str | None:
        """The cached token (for redaction only; never log it)."""
        return self._token.value if self._token else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(has_token={self._token is not None})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Refuse sync use: the token request needs the event loop."""
        raise RuntimeError("AdvowareAuth works only with httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Authenticate; on 401 get a new token once; a second 401 is a configuration error."""
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        log.info("Advoware answered 401 on %s; requesting a new token", request.url.path)
        token = await self.token(stale=token)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            raise PermanentError(
                f"Advoware rejected a freshly issued token (HTTP 401 on {request.url.path}): "
                "check that the employee in ADVOWARE_USER may use the API (and ADVOWARE_PASSWORD)",
                setting=LOGIN_SETTINGS,
            )

    async def token(self, stale: str | None = None) -> str:
        """A usable token: the cached one unless it is ``stale`` or due, else a new one."""
        async with self._lock:
            cached = self._token
            if cached is not None and cached.value != stale and self._clock() < cached.reuse_until:
                return cached.value
            started = self._clock()
            value, lifetime = await self._issue()
            reuse = float(self._refresh_seconds)
            if lifetime is not None:
                margin = min(EXPIRY_MARGIN_SECONDS, max(lifetime, 0.0) / 10)
                reuse = min(reuse, lifetime - margin)
            self._token = _Token(value, started + reuse)
            log.info("got a new Advoware token, reused for up to %.0f s", max(reuse, 0.0))
            return value


def refused(status: int, message: str) -> SyncError:
    """The error a refused token request deserves, naming what to fix."""
    low = message.lower()
    what = f"Advoware refused the token request (HTTP {status}: {message})"
    if "nonce" in low:
        return RetryableError(f"{what}; a retry sends a new nonce")
    if status == 401 and ("zeit" in low or "timestamp" in low):
        return PermanentError(
            f"{what}: the worker's clock differs from Advoware's; synchronise it (NTP)"
        )
    if any(w in low for w in ("signatur", "signature", "hmac", "appid", "app id")):
        setting = SIGNATURE_SETTINGS
    elif "produkt" in low or "product" in low:
        setting = PRODUCT_SETTINGS
    elif any(w in low for w in ("kanzlei", "datenbank", "database")):
        setting = KANZLEI_SETTINGS
    elif any(w in low for w in ("kennwort", "passwort", "password", "benutzer", "login")):
        setting = LOGIN_SETTINGS
    else:
        setting = ALL_CREDENTIALS
    return PermanentError(f"{what}: check {setting}", setting=setting)


def token_lifetime(data: dict[str, Any]) -> float | None:
    """Seconds the token lives: ``expires_in``, else ``expiration_utc`` minus now."""
    found = {str(k).lower(): v for k, v in data.items()}
    expires_in = found.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return float(expires_in)
    if isinstance(expires_in, str):
        try:
            return float(expires_in)
        except ValueError:
            pass
    expiration = found.get("expiration_utc")
    if isinstance(expiration, str) and expiration.strip():
        text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), expiration.strip(), 1)
        text = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        return (when - datetime.now(UTC)).total_seconds()
    return None
