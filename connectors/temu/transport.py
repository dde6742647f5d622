"""The TEMU Open Platform's transport: one signed ``POST`` per call, rate limit, error mapping.

Every method is a ``POST`` of a flat JSON body to one router URL; the method name travels in
``type``, the common params (``app_key``, ``access_token``, ``timestamp``, ``data_type``) sit
next to the business params, and ``sign`` covers all of them (``connectors.temu.signing``).

Every request first takes a token from the ``RedisRateLimiter`` under the shop's app key, so
all worker processes together stay below TEMU's per-app-key limit. Failures leave this module
as the typed errors of ``connectors.temu.errors``; no message built here contains the app
secret or the access token, and none has an httpx exception (which holds the request body,
secret and token included) in its chain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from connectors.http import redact, retry_after
from connectors.temu.errors import (
    RATE_LIMITED,
    SHOPS_SETTING,
    SUCCESS,
    TemuError,
    TemuRateLimitError,
    TemuRejectedError,
    TemuRetryableError,
    error_for,
)
from connectors.temu.settings import TEMU_HOSTS, TemuShop
from connectors.temu.signing import COMMON_PARAMS, encode_body
from infra.rate_limit import RedisRateLimiter
from models.clock import unix as unix_now

log = logging.getLogger("connectors.temu.client")

DEFAULT_HEADROOM = 0.05
"""Fraction of the rate kept unused (19/s at TEMU's 20 QPS); see ``TemuTransport``."""


class TemuTransport:
    """One shop's signed, rate-limited calls to TEMU's router, answers as typed errors.

    One ``httpx.AsyncClient`` per shop and worker. ``TemuClient`` adds the calls synchub
    makes on top of ``call``.

    Args:
        shop: the shop (region, app key, secret, token, optional router URL).
        limiter: the Redis rate limiter shared by every worker process.
        rate_per_second: TEMU's limit for the app key (``TEMU_RATE_LIMIT_QPS``).
        timeout: HTTP timeout per request, seconds.
        transport: injected httpx transport (tests, proxies).
        clock: source of the ``timestamp`` param (unix seconds); tests skew it.
        headroom: fraction of ``rate_per_second`` left unused. The limiter spaces requests
            in Redis time, but each reaches TEMU after its own network and scheduling
            delay. At exactly 20/s any request delayed more than the one 20 slots later
            puts 21 requests into a one-second window, which a windowed limiter upstream
            (TEMU does not say which kind it runs) answers with ``4000004``; measured here,
            that happens within seconds. 5 % (19/s at 20 QPS) absorbs ~50 ms of relative
            delay; with the limiter's grant-at-send it kept every window at <= 20 even on
            an overloaded host, at ~18.3/s achieved.
        rate_limit_retries: ``4000004`` answers waited out inside a call (1 s each) before
            raising ``TemuRateLimitError``. The gateway answers it before the business
            service sees the request, so resending is safe for every method.
        sleep: how to wait after ``4000004`` (tests may replace it).
    """

    def __init__(
        self,
        shop: TemuShop,
        limiter: RedisRateLimiter,
        *,
        rate_per_second: float = 20.0,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = unix_now,
        headroom: float = DEFAULT_HEADROOM,
        rate_limit_retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 <= headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        self.shop = shop
        self.url = shop.api_url or TEMU_HOSTS[shop.region]
        self._limiter = limiter
        self._rate = rate_per_second * (1 - headroom)
        self._timeout = timeout
        self._clock = clock
        self._retries = rate_limit_retries
        self._sleep = sleep
        self._secret = shop.app_secret.get_secret_value()
        self._token = shop.access_token.get_secret_value()
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"Content-Type": "application/json", "User-Agent": "synchub-temu/0.1"},
        )

    @property
    def shop_id(self) -> str:
        """Id of the shop this client calls for (safe to log)."""
        return self.shop.id

    @property
    def effective_rate(self) -> float:
        """Requests per second this client (with all others on the app key) stays under."""
        return self._rate

    async def call(self, api_type: str, /, **params: Any) -> dict[str, Any]:
        """Call ``api_type`` with business ``params`` (flat, next to the common params).

        Returns:
            ``result`` of the envelope (``{}`` when TEMU sends none).

        Raises:
            TemuRejectedError: credentials, clock, scope or parameters refused (permanent).
            TemuRateLimitError: ``4000004`` persisted after ``rate_limit_retries`` waits.
            TemuRetryableError: system exception, HTTP 429/5xx, timeout, connection error.
            TemuBusinessError: any other TEMU error code (``code`` says which).
        """
        clash = COMMON_PARAMS & params.keys()
        if clash:
            raise ValueError(f"business params may not be named {', '.join(sorted(clash))}")
        for attempt in range(self._retries + 1):
            try:
                return await self._post(api_type, params)
            except TemuRateLimitError as exc:
                if attempt >= self._retries:
                    raise
                log.warning(
                    "TEMU rate limit on %s for shop %s; waiting %.0f s",
                    api_type,
                    self.shop.id,
                    exc.retry_after or 1.0,
                )
                await self._sleep(exc.retry_after or 1.0)
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _post(self, api_type: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One rate-limited, signed POST; the envelope's ``result`` or a typed error."""
        await self._limiter.acquire(self.shop.app_key, self._rate)
        body = {
            "type": api_type,
            "app_key": self.shop.app_key,
            "access_token": self._token,
            "timestamp": int(self._clock()),
            "data_type": "JSON",
            **params,
        }
        content = encode_body(self._secret, body)
        response = await self._send(api_type, content)
        status = response.status_code
        if status == 429 or status >= 500:
            raise self._tag(
                TemuRetryableError(
                    f"TEMU {api_type} for shop {self.shop.id}: HTTP {status}",
                    retry_after=retry_after(response),
                ),
                api_type,
            )
        if status != 200:
            raise self._tag(
                TemuRejectedError(
                    f"TEMU {api_type} for shop {self.shop.id}: HTTP {status} from the router "
                    f"URL: check region/api_url of shop {self.shop.id} ({SHOPS_SETTING})",
                    setting=SHOPS_SETTING,
                ),
                api_type,
            )
        envelope = self._json(api_type, response)
        code = envelope.get("errorCode")
        request_id = envelope.get("requestId")
        request_id = self._redact(str(request_id)) if request_id is not None else None
        if envelope.get("success") is True and code in (SUCCESS, None):
            result = envelope.get("result")
            return result if isinstance(result, dict) else {}
        try:
            number = int(code) if code is not None else 0
        except (TypeError, ValueError):
            number = 0
        message = self._redact(str(envelope.get("errorMsg") or "")[:300])
        if number == 0 or number == SUCCESS:
            raise self._tag(
                TemuRetryableError(
                    f"TEMU {api_type} for shop {self.shop.id}: unsuccessful answer without an "
                    f"error code ({message or 'no message'})"
                ),
                api_type,
            )
        if number == RATE_LIMITED:
            log.debug("TEMU 4000004 on %s for shop %s", api_type, self.shop.id)
        raise error_for(
            number, message, api_type=api_type, shop_id=self.shop.id, request_id=request_id
        )

    async def _send(self, api_type: str, content: bytes) -> httpx.Response:
        """POST the body; transport failures become ``TemuRetryableError``.

        The error is raised outside the ``except`` block so it has no ``__context__``: httpx
        exceptions hold the request, whose body carries the token and the signature.
        """
        try:
            return await self._http.post(self.url, content=content)
        except httpx.TimeoutException:
            failure = f"timed out after {self._timeout:g} s"
        except httpx.TransportError as exc:
            failure = f"failed: {type(exc).__name__}: {self._redact(str(exc))[:200]}"
        raise self._tag(
            TemuRetryableError(f"TEMU {api_type} for shop {self.shop.id} {failure}"), api_type
        )

    def _json(self, api_type: str, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self._tag(
                TemuRetryableError(
                    f"TEMU {api_type} for shop {self.shop.id} answered HTTP "
                    f"{response.status_code} with a body that is not a JSON object"
                ),
                api_type,
            )
        return data

    def _tag(self, error: TemuError, api_type: str) -> TemuError:
        return error._tag(None, api_type, self.shop.id, None)

    def _redact(self, text: str) -> str:
        return redact(text, (self._secret, self._token))
