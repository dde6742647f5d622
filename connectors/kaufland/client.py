r"""HTTP client of the Kaufland Marketplace Seller API v2: signing, errors, order units.

Every request carries ``Shop-Client-Key``, ``Shop-Timestamp`` (unix seconds),
``Shop-Signature`` and ``User-Agent``; the signature is HMAC-SHA256 (hex) with the secret key
over ``METHOD\nFULL_URL\nBODY\nTIMESTAMP``, where the full URL includes scheme, host and
the query string exactly as sent (see ``connectors.kaufland.connector`` for the sources).
Signing is an ``httpx.Auth``, so the signed URL and body are the ones httpx sends.

Failures leave this module as the typed errors of ``models.errors``, whose class says how to
recover: 401/403 are permanent and name the keys to check, 429/5xx/timeouts are retryable
(with ``Retry-After`` when Kaufland sends it). No message contains the client or secret key,
and none has an httpx exception (which holds the request and its headers) in its chain.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Generator
from typing import Any

import httpx

from connectors.http import retry_after
from models.clock import unix as unix_now
from models.errors import PermanentError, RetryableError

KEYS_SETTING = "KAUFLAND_CLIENT_KEY/KAUFLAND_SECRET_KEY"
"""What an operator fixes when Kaufland refuses the signature."""
MAX_LIMIT = 100
"""Largest ``limit`` of the list endpoints (default 30)."""
_WAIT_IN_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*s(?:ec(?:ond)?s?)?\b", re.IGNORECASE)


def sign(method: str, url: str, body: str, timestamp: int, secret_key: str) -> str:
    """Kaufland's request signature: HMAC-SHA256 hex of the four parts joined by newlines.

    Args:
        method: HTTP method, upper case.
        url: the full URL as sent (``https://sellerapi.kaufland.com/v2/...?...``).
        body: the request body as sent (``""`` for a GET).
        timestamp: the ``Shop-Timestamp`` header's value.
        secret_key: the seller's secret key.
    """
    message = "\n".join([method.upper(), url, body, str(timestamp)])
    return hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).hexdigest()


class KauflandAuthError(PermanentError):
    """Kaufland refused the keys, the signature or the timestamp (HTTP 401/403)."""


class KauflandRequestError(PermanentError):
    """Kaufland refused the request itself (HTTP 400/404/422): a parameter to fix.

    Attributes:
        status: the HTTP status (404: the record does not exist).
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class KauflandRetryableError(RetryableError):
    """429, 5xx, a timeout or a broken connection: try again later."""


class KauflandAuth(httpx.Auth):
    """Signs each request just before httpx sends it (the URL and body it really sends)."""

    def __init__(
        self, client_key: str, secret_key: str, user_agent: str, clock: Callable[[], float]
    ) -> None:
        self._client_key = client_key
        self._secret_key = secret_key
        self._user_agent = user_agent
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the four headers Kaufland requires."""
        timestamp = int(self._clock())
        body = request.content.decode("utf-8") if request.content else ""
        request.headers["Shop-Client-Key"] = self._client_key
        request.headers["Shop-Timestamp"] = str(timestamp)
        request.headers["Shop-Signature"] = sign(
            request.method, str(request.url), body, timestamp, self._secret_key
        )
        request.headers["User-Agent"] = self._user_agent
        request.headers["Accept"] = "application/json"
        yield request


class KauflandClient:
    """The Kaufland calls synchub makes, for every storefront of one seller account.

    One ``httpx.AsyncClient`` per worker; share the instance between activities.

    Args:
        api_url: base URL ending in ``/v2``.
        client_key: the seller's client key.
        secret_key: the seller's secret key (signs; never sent).
        user_agent: name of the partner solution.
        timeout: HTTP timeout per request, seconds.
        transport: injected httpx transport (tests, proxies).
        clock: source of ``Shop-Timestamp`` (unix seconds); tests skew it.
    """

    def __init__(
        self,
        api_url: str,
        client_key: str,
        secret_key: str,
        *,
        user_agent: str = "synchub",
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = unix_now,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._secrets = [s for s in (client_key, secret_key) if s]
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.api_url + "/",
            transport=transport,
            timeout=httpx.Timeout(timeout),
            auth=KauflandAuth(client_key, secret_key, user_agent, clock),
        )

    async def list_order_units(
        self,
        storefront: str,
        *,
        updated_from: str | None = None,
        sort: str | None = "ts_updated_iso:asc",
        limit: int = MAX_LIMIT,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One page of a storefront's order units.

        Args:
            storefront: e.g. ``de``.
            updated_from: ``ts_updated_from_iso`` (``YYYY-MM-DDTHH:MM:SSZ``).
            sort: ``sort`` parameter (oldest change first by default).
            limit: page size, at most ``MAX_LIMIT``.
            offset: items to skip.

        Returns:
            ``{"data": [order unit, ...], "pagination": {"offset", "limit", "total"}}``.
        """
        params: dict[str, Any] = {
            "storefront": storefront,
            "limit": max(1, min(limit, MAX_LIMIT)),
            "offset": offset,
        }
        if updated_from is not None:
            params["ts_updated_from_iso"] = updated_from
        if sort:
            params["sort"] = sort
        return await self._get("order-units", params, storefront)

    async def order_unit(self, id_order_unit: int | str, storefront: str) -> dict[str, Any] | None:
        """One order unit, or ``None`` when Kaufland answers 404."""
        try:
            body = await self._get(f"order-units/{id_order_unit}", {}, storefront)
        except KauflandRequestError as exc:
            if exc.status == 404:
                return None
            raise
        data = body.get("data")
        return data if isinstance(data, dict) else None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, Any], storefront: str) -> dict[str, Any]:
        what = f"Kaufland GET /{path.split('/')[0]} for storefront {storefront}"
        response = await self._send(path, params, what)
        status = response.status_code
        if status == 200:
            return self._json(response, what)
        message = self._message(response)
        if status == 429 or status >= 500:
            raise KauflandRetryableError(
                f"{what}: HTTP {status}{message}",
                retry_after=retry_after(response, message, _WAIT_IN_TEXT),
            )
        if status in (401, 403):
            raise KauflandAuthError(
                f"{what}: HTTP {status}, Kaufland refused the keys or the signature{message}; "
                f"check {KEYS_SETTING} and the worker's clock (Shop-Timestamp)",
                setting=KEYS_SETTING,
            )
        raise KauflandRequestError(f"{what}: HTTP {status}{message}", status)

    async def _send(self, path: str, params: dict[str, Any], what: str) -> httpx.Response:
        """GET; transport failures become ``KauflandRetryableError`` without httpx context."""
        try:
            return await self._http.get(path, params=params)
        except httpx.TimeoutException:
            failure = f"timed out after {self._timeout:g} s"
        except httpx.TransportError as exc:
            failure = f"failed: {type(exc).__name__}: {self._redact(str(exc))[:200]}"
        raise KauflandRetryableError(f"{what} {failure}")

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise KauflandRetryableError(f"{what}: HTTP 200 with a body that is not a JSON object")
        return data

    def _message(self, response: httpx.Response) -> str:
        """``: <message>`` from an error body (``message`` or ``errors``), redacted, short."""
        try:
            body = response.json()
        except ValueError:
            return ""
        text = ""
        if isinstance(body, dict):
            text = str(body.get("message") or body.get("errors") or body.get("error") or "")
        return f": {self._redact(text)[:200]}" if text else ""

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


__all__ = [
    "KEYS_SETTING",
    "MAX_LIMIT",
    "KauflandAuth",
    "KauflandAuthError",
    "KauflandClient",
    "KauflandRequestError",
    "KauflandRetryableError",
    "sign",
]
