"""HTTP client of the Advoware (advo-net) API: discovery, signed tokens, error classification.

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
import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx

from connectors.advoware.settings import AdvowareSettings
from connectors.http import redact, retry_after
from connectors.shapes import shape_of
from models.errors import NotConfiguredError, PermanentError, RetryableError

log = logging.getLogger(__name__)

TOKEN_PATH = "api/v1/Token"
"""Path of the token request on the security gateway."""
EMPLOYEES_PATH = "api/v1/advonet/Employees"
"""Path of the employee list on the API host [I: reference §1.4]."""
TERMINE_PATH = "api/v1/advonet/Termine"
"""Path of the appointments on the API host [I: reference §1.5]."""
SIGNATURE_SETTINGS = "ADVOWARE_APP_ID/ADVOWARE_API_KEY"
LOGIN_SETTINGS = "ADVOWARE_USER/ADVOWARE_PASSWORD"
KANZLEI_SETTINGS = "ADVOWARE_KANZLEI/ADVOWARE_DATABASE"
PRODUCT_SETTINGS = "ADVOWARE_APP_ID/ADVOWARE_PRODUCT"
ALL_CREDENTIALS = "ADVOWARE_APP_ID/ADVOWARE_API_KEY/ADVOWARE_USER/ADVOWARE_PASSWORD"
EXPIRY_MARGIN_SECONDS = 60.0
"""A token is replaced this long before the gateway says it expires."""

_SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:seconds?|sekunden|secs?|s)\b", re.IGNORECASE)
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


class AdvowareClient:
    """The calls synchub makes to Advoware, each classified into a typed error on failure.

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

    # -- the calls ----------------------------------------------------------------------

    async def employees(self) -> list[dict[str, Any]]:
        """``GET api/v1/advonet/Employees``: every employee object, as received."""
        body = await self._get(EMPLOYEES_PATH, None, "GET Employees")
        items = _list_of(body)
        if items is None:  # a changed API, not a hiccup: retrying the same request cannot help
            raise PermanentError(
                f"Advoware answered GET Employees with {shape_of(body)}, not a list of employees"
            )
        return [e for e in items if isinstance(e, dict)]

    async def appointments(self, kuerzel: str, start: date, end: date) -> list[dict[str, Any]]:
        """``GET api/v1/advonet/Termine?kuerzel=&from=&to=``: appointments overlapping the days.

        Returns the raw objects (any casing); entries that are not objects are kept so the
        connector can dead-letter them.
        """
        params = {"kuerzel": kuerzel, "from": start.isoformat(), "to": end.isoformat()}
        what = f"GET Termine of {kuerzel} {start.isoformat()}..{end.isoformat()}"
        body = await self._get(TERMINE_PATH, params, what, kuerzel=kuerzel)
        items = _list_of(body)
        if items is None:
            raise RetryableError(f"Advoware answered {what} without a list of appointments")
        return items

    async def appointment(self, frnr: int) -> dict[str, Any] | None:
        """``GET api/v1/advonet/Termine?frnr=``: the appointment, or ``None`` on 404."""
        what = f"GET Termine frnr={int(frnr)}"
        body = await self._get(TERMINE_PATH, {"frnr": str(int(frnr))}, what, missing_ok=True)
        if body is None:
            return None
        if isinstance(body, list) and len(body) == 1:  # tolerate a one-element list
            body = body[0]
        if not isinstance(body, dict):
            raise RetryableError(f"Advoware answered {what} without an appointment object")
        return body

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
            self._refused(status, self._error_text(response))
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
        return token, _lifetime(data)

    def _refused(self, status: int, message: str) -> None:
        """Raise the error a refused token request deserves, naming what to fix."""
        low = message.lower()
        what = f"Advoware refused the token request (HTTP {status}: {message})"
        if "nonce" in low:
            raise RetryableError(f"{what}; a retry sends a new nonce")
        if status == 401 and ("zeit" in low or "timestamp" in low):
            raise PermanentError(
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
        raise PermanentError(f"{what}: check {setting}", setting=setting)

    # -- plumbing -----------------------------------------------------------------------

    async def _get(
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


def _list_of(body: Any) -> list[Any] | None:
    """A bare JSON array, or the one list inside a wrapper object (``items``/``value``)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for name, value in _lower_keys(body).items():
            if name in ("items", "value", "data", "result") and isinstance(value, list):
                return value
    return None


def _lower_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in data.items()}


def _slash(url: str) -> str:
    return url if url.endswith("/") else f"{url}/"


def _lifetime(data: dict[str, Any]) -> float | None:
    """Seconds the token lives: ``expires_in``, else ``expiration_utc`` minus now."""
    found = _lower_keys(data)
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


__all__ = ["AdvowareAuth", "AdvowareClient", "request_timestamp", "sign"]
