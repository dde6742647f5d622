"""The Advoware (advo-net) transport: discovery, signed tokens, error classification.

Advoware spreads one conversation over three hosts (``reference/upstream-apis.md`` §1.2):
URL discovery by Kanzlei, a security gateway that issues bearer tokens for an
HMAC-SHA512-signed request, and the API that relays to the Kanzlei's on-premise connector.
One ``httpx.AsyncClient`` per worker talks to all three; the token lives in
``AdvowareAuth`` and is shared by every concurrent activity of the worker, so a burst of
calls costs one token request, not one each.

Errors leave this module as ``RetryableError`` (5xx, 429, timeouts, connection errors, an
offline Kanzlei connector: ``... ist nicht angemeldet``) or ``PermanentError`` naming the
setting to fix (a refused signature or login, an employee whose calendar the API user may
not read: ``... nicht freigeschaltet``, other 4xx), so activities need no HTTP knowledge.
No message or log line built here contains the API key, the password or a token, and no
httpx exception (whose request holds the token or the password) is ever chained to one.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import re
import uuid
from collections.abc import Awaitable
from typing import Any

import httpx

from connectors.advoware.auth import (
    ALL_CREDENTIALS,
    AdvowareAuth,
    refused,
    request_timestamp,
    sign,
    token_lifetime,
)
from connectors.advoware.settings import AdvowareSettings
from connectors.http import redact, retry_after
from models.errors import NotConfiguredError, PermanentError, RetryableError

log = logging.getLogger("connectors.advoware.client")

TOKEN_PATH = "api/v1/Token"
"""Path of the token request on the security gateway."""

_SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:seconds?|sekunden|secs?|s)\b", re.IGNORECASE)


class AdvowareTransport:
    """Requests to Advoware's three hosts, each failure classified into a typed error.

    ``AdvowareClient`` adds the calls synchub makes on top of ``get``.

    Args:
        settings: the ``advoware`` section of the settings tree.
        transport: injected transport (tests, proxies); default: httpx's.

    Raises:
        NotConfiguredError: a credential of the token request is missing.
    """

    def __init__(
        self, settings: AdvowareSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if not settings.configured:
            raise NotConfiguredError(
                "Advoware is not configured: set ADVOWARE_APP_ID, ADVOWARE_API_KEY, "
                "ADVOWARE_KANZLEI, ADVOWARE_DATABASE, ADVOWARE_USER and ADVOWARE_PASSWORD",
                setting=ALL_CREDENTIALS,
            )
        self.settings = settings
        self._secrets = [
            s.get_secret_value()
            for s in (settings.api_key, settings.password)
            if s is not None and s.get_secret_value()
        ]
        self.auth = AdvowareAuth(self._issue_token, settings.token_refresh_seconds)
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_seconds),
            auth=self.auth,
            headers={"Accept": "application/json", "User-Agent": "synchub-advoware/0.1"},
        )
        self._bases: tuple[str, str] | None = None
        self._bases_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kanzlei={self.settings.kanzlei!r}, user={self.settings.user!r})"
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- hosts and tokens ---------------------------------------------------------------

    async def bases(self) -> tuple[str, str]:
        """``(api base, security gateway)``, both with a trailing slash.

        From ``ADVOWARE_API_URL`` / ``ADVOWARE_SECURITY_URL`` when the API URL is set, else
        discovered once by Kanzlei at ``ADVOWARE_DISCOVERY_URL`` (``connectorUrl`` when it is
        set, else ``relayUrl``; ``securityGateway``).
        """
        if self._bases is not None:
            return self._bases
        async with self._bases_lock:
            if self._bases is None:
                self._bases = await self._discover()
            return self._bases

    async def _discover(self) -> tuple[str, str]:
        s = self.settings
        if s.api_url:
            return _slash(s.api_url), _slash(s.security_url)
        if not s.discovery_url:
            raise NotConfiguredError(
                "Advoware has no API address: set ADVOWARE_API_URL, or ADVOWARE_DISCOVERY_URL "
                "to discover it by Kanzlei",
                setting="ADVOWARE_API_URL",
            )
        what = "URL discovery"
        request = self._http.get(s.discovery_url, params={"Kanzlei": s.kanzlei}, auth=httpx.Auth())
        response = await self._send(what, request)
        if response.status_code in (400, 404):
            raise PermanentError(
                f"Advoware {what} does not know the Kanzlei (HTTP {response.status_code}: "
                f"{self._error_text(response)})",
                setting="ADVOWARE_KANZLEI",
            )
        if response.status_code >= 400:
            raise RetryableError(
                f"Advoware {what}: HTTP {response.status_code}: {self._error_text(response)}"
            )
        data = _json(response)
        found = _lower_keys(data) if isinstance(data, dict) else {}
        api = found.get("connectorurl") or found.get("relayurl")
        if not isinstance(api, str) or not api:
            raise PermanentError(
                f"Advoware {what} answered without relayUrl or connectorUrl: set ADVOWARE_API_URL",
                setting="ADVOWARE_API_URL",
            )
        security = found.get("securitygateway")
        security = security if isinstance(security, str) and security else s.security_url
        log.info("discovered the Advoware API at %s (security gateway %s)", api, security)
        return _slash(api), _slash(security)

    async def _issue_token(self) -> tuple[str, float | None]:
        """Request a token from the security gateway; returns it and its lifetime in seconds."""
        s = self.settings
        assert s.api_key is not None and s.password is not None
        _, security = await self.bases()
        timestamp, nonce = request_timestamp(), str(uuid.uuid4())
        try:
            signature = sign(
                s.api_key.get_secret_value(), s.product, str(s.app_id), nonce, timestamp
            )
        except (binascii.Error, ValueError):
            signature = None
        if signature is None:  # raised here, outside the except: nothing holding the key chains
            raise PermanentError(
                "ADVOWARE_API_KEY is not a valid base64 string (Advoware issues API keys base64 "
                "encoded; copy it unchanged)",
                setting="ADVOWARE_API_KEY",
            )
        body = {
            "AppID": s.app_id,
            "Kanzlei": s.kanzlei,
            "Database": s.database,
            "User": s.user,
            "Role": s.role,
            "Product": s.product,
            "Password": s.password.get_secret_value(),
            "Nonce": nonce,
            "HMAC512Signature": signature,
            "RequestTimeStamp": timestamp,
        }
        what = "token request"
        request = self._http.post(f"{security}{TOKEN_PATH}", json=body, auth=httpx.Auth())
        response = await self._send(what, request)
        status = response.status_code
        if status in (400, 401, 403):
            raise refused(status, self._error_text(response))
        if status >= 400:
            raise RetryableError(
                f"Advoware {what}: HTTP {status}: {self._error_text(response)}",
                retry_after=retry_after(response, "", _SECONDS),
            )
        data = _json(response)
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise RetryableError(f"Advoware {what} answered HTTP {status} without access_token")
        assert isinstance(data, dict)
        return token, token_lifetime(data)

    async def get(
        self,
        path: str,
        params: dict[str, str] | None,
        what: str,
        *,
        kuerzel: str | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """GET on the API host; classify every failure into a typed error."""
        api, _ = await self.bases()
        response = await self._send(what, self._http.get(f"{api}{path}", params=params))
        status = response.status_code
        if status == 404 and missing_ok:
            return None
        if status < 400:
            data = _json(response)
            if data is _NOT_JSON:
                raise RetryableError(f"Advoware {what} answered HTTP {status} with a non-JSON body")
            return data
        message = self._error_text(response)
        if "nicht angemeldet" in message.lower():
            raise RetryableError(
                f"Advoware {what}: the Kanzlei's database connector is offline "
                f"(HTTP {status}: {message})",
                retry_after=retry_after(response, message, _SECONDS),
            )
        if status in (408, 429) or status >= 500:
            raise RetryableError(
                f"Advoware {what}: HTTP {status}: {message}",
                retry_after=retry_after(response, message, _SECONDS),
            )
        if status == 403 and kuerzel is not None:
            raise PermanentError(
                f"Advoware {what}: HTTP 403: {message}: the API user (ADVOWARE_USER) may not "
                f"read the calendar of employee {kuerzel}; grant it in Advoware or leave "
                f"{kuerzel} out with CALENDAR_SYNC_DEBUG_KUERZEL",
                setting="ADVOWARE_USER",
            )
        if status == 403:
            raise PermanentError(
                f"Advoware {what}: HTTP 403: {message}: the API user lacks a right",
                setting="ADVOWARE_USER",
            )
        raise PermanentError(f"Advoware {what}: HTTP {status}: {message}")

    async def _send(self, what: str, request: Awaitable[httpx.Response]) -> httpx.Response:
        """Await a request, turning transport failures into ``RetryableError``.

        The error is raised outside the ``except`` block so it has no ``__context__``: httpx
        exceptions hold the request, whose headers carry the token and whose body (for the
        token request) carries the password.
        """
        try:
            return await request
        except httpx.TimeoutException:
            failure = f"timed out after {self.settings.timeout_seconds:g} s"
        except httpx.TransportError as exc:
            failure = f"failed: {type(exc).__name__}: {self._redact(str(exc))}"
        raise RetryableError(f"Advoware {what} {failure}")

    def _error_text(self, response: httpx.Response) -> str:
        """The upstream's message (ASP.NET ``{"Message"}``, OAuth-ish JSON or text), redacted."""
        data = _json(response)
        text: Any = None
        if isinstance(data, dict):
            found = _lower_keys(data)
            for name in ("message", "error_description", "detail", "title", "error"):
                if found.get(name):
                    text = found[name]
                    break
        elif isinstance(data, str):
            text = data
        elif data is _NOT_JSON:
            text = response.text.strip()
        text = str(text) if text else response.reason_phrase or "no message"
        return self._redact(" ".join(text.split())[:200])

    def _redact(self, text: str) -> str:
        return redact(text, (*self._secrets, self.auth.current))


_NOT_JSON = object()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return _NOT_JSON


def _lower_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in data.items()}


def _slash(url: str) -> str:
    return url if url.endswith("/") else f"{url}/"
