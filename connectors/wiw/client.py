"""HTTP client of the When I Work API v2: auth, rate limits and error classification.

One ``httpx.AsyncClient`` per worker; the token lives in ``WiwAuth`` and is shared by every
concurrent call. Errors leave this module as ``RetryableError`` (429, rate-limit 403s once
our own retries are spent, 5xx, timeouts, connection errors) or ``PermanentError`` naming
the setting to fix (rejected credentials, other 4xx), so activities need no HTTP knowledge.
No message built here contains the token, the developer key or the password.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import orjson

from connectors.http import redact, retry_after, widen_body_reads
from connectors.json_slices import loads_in_slices
from connectors.wiw.settings import WiwSettings
from models.errors import PermanentError, RetryableError

log = logging.getLogger(__name__)

PARSE_OFF_LOOP_BYTES = 256 * 1024
"""Bodies larger than this are decoded in a thread: a 20,000-shift day is ~13 MB of JSON,
~160 ms of CPU that would otherwise hold the event loop."""


class _ShiftsBody(msgspec.Struct):
    """A ``GET /2/shifts`` body with its shifts left as JSON text (``WiwClient.split_shifts``)."""

    shifts: list[msgspec.Raw] = msgspec.field(default_factory=list)
    deleted_ids: list[Any] | None = None


class _ShiftHead(msgspec.Struct):
    """The only field of a shift read before its text is known to have changed."""

    id: Any = None


_SPLIT = msgspec.json.Decoder(_ShiftsBody)
_HEAD = msgspec.json.Decoder(_ShiftHead)


def _not_json(what: str, status: int, detail: str = "") -> RetryableError:
    """The error of a body that cannot be read as JSON (retried: a cut-off answer)."""
    return RetryableError(
        f"When I Work {what} answered HTTP {status} with a body that is not a JSON object{detail}"
    )


TOKEN_SETTING = "WIW_KEY"
LOGIN_SETTINGS = "WIW_DEVELOPER_KEY/WIW_EMAIL/WIW_PASSWORD"
RATE_LIMIT_RETRIES = 3
"""Waits inside the client on 429 before giving up to the activity's retry policy."""
MAX_WAIT_SECONDS = 30.0
"""Longest wait inside one call; a longer ``Retry-After`` is left to Temporal's backoff."""

_SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:seconds?|secs?|s)\b", re.IGNORECASE)


class WiwAuth(httpx.Auth):
    """Sends ``W-Token``; on a 401 logs in again once and retries the request.

    The token is either pre-issued (``WIW_KEY``, as slot_sync used) or obtained by logging in
    with the developer key and the user's e-mail and password. Concurrent requests that hit
    a 401 with the same stale token trigger one login between them (``asyncio.Lock``).
    """

    def __init__(
        self, settings: WiwSettings, login: Callable[[], Awaitable[str]] | None = None
    ) -> None:
        self._token = settings.token.get_secret_value() if settings.token else None
        self._user_id = settings.user_id
        self._login = login
        self._lock = asyncio.Lock()

    @property
    def can_login(self) -> bool:
        """Whether a rejected token can be replaced by logging in."""
        return self._login is not None

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Refuse sync use: login needs the event loop."""
        raise RuntimeError("WiwAuth works only with httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Authenticate, and on 401 re-login once; a second 401 is a configuration error."""
        token = self._token or await self._refresh(stale=None)
        self._apply(request, token)
        response = yield request
        if response.status_code != 401:
            return
        if not self.can_login:
            raise PermanentError(
                "When I Work rejected the pre-issued token (HTTP 401) and no login is "
                "configured: renew WIW_KEY, or set WIW_DEVELOPER_KEY, WIW_EMAIL and WIW_PASSWORD",
                setting=TOKEN_SETTING,
            )
        token = await self._refresh(stale=token)
        self._apply(request, token)
        response = yield request
        if response.status_code == 401:
            raise PermanentError(
                "When I Work rejected a freshly issued login token (HTTP 401): check the "
                "account's API access and WIW_USER_ID",
                setting=LOGIN_SETTINGS,
            )

    def _apply(self, request: httpx.Request, token: str) -> None:
        request.headers["W-Token"] = token
        if self._user_id is not None:
            request.headers["W-UserId"] = str(self._user_id)

    async def _refresh(self, stale: str | None) -> str:
        """Log in unless another request already replaced ``stale``; returns the token."""
        if self._login is None:
            raise PermanentError(
                "When I Work is not configured: set WIW_KEY, or WIW_DEVELOPER_KEY, WIW_EMAIL "
                "and WIW_PASSWORD",
                setting=TOKEN_SETTING,
            )
        async with self._lock:
            if self._token is not None and self._token != stale:
                return self._token
            self._token = await self._login()
            return self._token


class WiwClient:
    """The calls synchub makes to When I Work, with retries only where they are cheap.

    Args:
        settings: the ``wiw`` section of the settings tree.
        transport: injected transport (tests, proxies); default: httpx's.
        sleep: how to wait on 429 (tests may record instead of sleeping).
    """

    def __init__(
        self,
        settings: WiwSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._secrets = [
            s.get_secret_value()
            for s in (settings.token, settings.developer_key, settings.password)
            if s is not None and s.get_secret_value()
        ]
        can_login = bool(settings.developer_key and settings.email and settings.password)
        self.auth = WiwAuth(settings, self._login if can_login else None)
        widen_body_reads()  # a day's shifts are megabytes
        self._http = httpx.AsyncClient(
            base_url=settings.api_url.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_seconds),
            auth=self.auth,
            headers={"Accept": "application/json", "User-Agent": "synchub-wiw/0.1"},
        )
        self._login_url = settings.login_url or f"{settings.api_url.rstrip('/')}/2/login"

    async def shifts(self, start: datetime, end: datetime) -> dict[str, Any]:
        """``GET /2/shifts`` for ``[start, end]`` including ``deleted_ids``.

        Naive datetimes are taken as UTC; both are sent as ISO 8601 with offset.
        """
        return self.decode_shifts(await self.shifts_raw(start, end))

    async def shifts_raw(self, start: datetime, end: datetime) -> bytes:
        """The undecoded body of ``shifts``: the connector hashes it before decoding it.

        Errors are classified as for every call; the body itself is only checked by
        ``decode_shifts``, so a caller that proves it unchanged never decodes it.
        """
        params = {"start": _iso(start), "end": _iso(end), "deleted": "true"}
        response = await self._get("/2/shifts", params, raw=True)
        assert isinstance(response, httpx.Response)
        return response.content

    def decode_shifts(self, content: bytes) -> dict[str, Any]:
        """Decode a ``GET /2/shifts`` body (orjson) and check its shape.

        Raises:
            RetryableError: not a JSON object, or no list under ``shifts``.

        """
        body = self._decode("GET /2/shifts", 200, content)
        if not isinstance(body.get("shifts", []), list):
            raise RetryableError("When I Work answered GET /2/shifts without a shifts list")
        return body

    @staticmethod
    def split_shifts(content: bytes) -> tuple[list[msgspec.Raw], list[Any]] | None:
        """A ``GET /2/shifts`` body's shifts as JSON texts, not decoded, and its deleted ids.

        msgspec only scans the shifts (a fifth of decoding them): a day whose bytes changed
        because one shift did is then hashed shift by shift and only the changed ones are
        decoded (``WiwConnector.fetch_page_raw``). Each text is a view of ``content``.
        Returns None for a body of another shape (``decode_shifts`` says what is wrong, or
        reads what this cannot, such as ``deleted_ids`` that are not a list).
        """
        try:
            body = _SPLIT.decode(content)
        except msgspec.MsgspecError:
            return None
        return body.shifts, body.deleted_ids or []

    @staticmethod
    def shift_id(text: msgspec.Raw | bytes) -> Any:
        """The ``id`` of a shift's JSON text (None when absent, or when it is not an object)."""
        try:
            return _HEAD.decode(text).id
        except msgspec.MsgspecError:
            return None

    @staticmethod
    def decode_shift(text: msgspec.Raw | bytes) -> Any:
        """Decode one shift's JSON text (from ``split_shifts``).

        Raises:
            RetryableError: not JSON (e.g. invalid UTF-8, which the split does not check),
                as when the whole body cannot be decoded.

        """
        try:
            return orjson.loads(memoryview(text))
        except orjson.JSONDecodeError:
            raise _not_json("GET /2/shifts", 200, " (a shift is not valid JSON)") from None

    async def shift(self, shift_id: int) -> dict[str, Any] | None:
        """``GET /2/shifts/{id}``: the shift object, or ``None`` when WIW says 404."""
        body = await self._get(f"/2/shifts/{int(shift_id)}", None, missing_ok=True)
        if body is None:
            return None
        assert isinstance(body, dict)
        shift = body.get("shift")
        if not isinstance(shift, dict):
            raise RetryableError("When I Work answered GET /2/shifts/{id} without a shift")
        return shift

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _get(
        self,
        path: str,
        params: dict[str, str] | None,
        *,
        missing_ok: bool = False,
        raw: bool = False,
    ) -> dict[str, Any] | httpx.Response | None:
        """GET with rate-limit waits; classify every failure into a typed error.

        Returns the decoded JSON object, or with ``raw`` the successful response undecoded.
        """
        what = f"GET {path}"
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            response = await self._send(what, self._http.get(path, params=params))
            status = response.status_code
            if status == 404 and missing_ok:
                return None
            if status < 400:
                if raw:
                    return response
                if len(response.content) > PARSE_OFF_LOOP_BYTES:  # a big day: off the loop
                    return await asyncio.to_thread(self._json, what, response)
                return self._json(what, response)
            message = self._error_text(response)
            wait = retry_after(response, message, _SECONDS)
            if status == 429 or (status == 403 and "rate limit" in message.lower()):
                delay = min(wait if wait is not None else 2.0 * 2**attempt, MAX_WAIT_SECONDS)
                if attempt < RATE_LIMIT_RETRIES:
                    log.warning("When I Work rate limit on %s; waiting %.1f s", what, delay)
                    await self._sleep(delay)
                    continue
                raise RetryableError(
                    f"When I Work rate limit on {what} persisted after "
                    f"{RATE_LIMIT_RETRIES} waits (HTTP {status}: {message})",
                    retry_after=wait if wait is not None else delay,
                )
            if status >= 500:
                raise RetryableError(f"When I Work {what}: HTTP {status}: {message}", wait)
            # 403 without a rate-limit message: the user lacks access to this workplace
            raise PermanentError(
                f"When I Work {what}: HTTP {status}: {message}",
                setting="WIW_USER_ID" if status == 403 else None,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _login(self) -> str:
        """Log in with the developer key; return the token (both login shapes are read)."""
        assert self.settings.developer_key is not None and self.settings.password is not None
        body = {"email": self.settings.email, "password": self.settings.password.get_secret_value()}
        headers = {"W-Key": self.settings.developer_key.get_secret_value()}
        request = self._http.post(self._login_url, json=body, headers=headers, auth=httpx.Auth())
        response = await self._send("login", request)
        if response.status_code in (400, 401, 403) and "rate limit" not in response.text.lower():
            raise PermanentError(
                f"When I Work login refused (HTTP {response.status_code}: "
                f"{self._error_text(response)}): check WIW_DEVELOPER_KEY, WIW_EMAIL, WIW_PASSWORD",
                setting=LOGIN_SETTINGS,
            )
        if response.status_code >= 400:
            raise RetryableError(
                f"When I Work login failed (HTTP {response.status_code}: "
                f"{self._error_text(response)})",
                retry_after=retry_after(response, response.text, _SECONDS),
            )
        data = self._json("login", response)
        for holder in (data, data.get("login"), data.get("person"), *(data.get("users") or [])):
            if isinstance(holder, dict) and isinstance(holder.get("token"), str):
                log.info("logged in to When I Work")
                return str(holder["token"])
        raise PermanentError(
            "When I Work login answered without a token: check WIW_LOGIN_URL",
            setting="WIW_LOGIN_URL",
        )

    async def _send(self, what: str, request: Awaitable[httpx.Response]) -> httpx.Response:
        """Await a request, turning transport failures into ``RetryableError``.

        The error is raised outside the ``except`` block so it has no ``__context__``: httpx
        exceptions hold the request, whose headers carry the token.
        """
        try:
            return await request
        except httpx.TimeoutException:
            failure = f"timed out after {self.settings.timeout_seconds:g} s"
        except httpx.TransportError as exc:
            failure = f"failed: {type(exc).__name__}: {self._redact(str(exc))}"
        raise RetryableError(f"When I Work {what} {failure}")

    def _json(self, what: str, response: httpx.Response) -> dict[str, Any]:
        return self._decode(what, response.status_code, response.content)

    @staticmethod
    def _decode(what: str, status: int, content: bytes) -> dict[str, Any]:
        """orjson-decode a body that must be a JSON object (several times stdlib's speed).

        A big day's ``shifts`` are decoded in slices, so no single call holds the GIL (and
        with it the worker's event loop) for the whole body.
        """
        try:
            data = loads_in_slices(content, "shifts")
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise _not_json(what, status)
        return data

    def _error_text(self, response: httpx.Response) -> str:
        """The upstream's error message (``{"error": ..., "code": ...}``), short and redacted."""
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):  # the newer {"error": {"code", "title"}} shape
            error = error.get("title") or error.get("code")
        text = str(error) if error else response.reason_phrase or "no message"
        return self._redact(text[:200])

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
