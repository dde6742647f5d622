"""The TEMU gateway's checks before any method runs, in the order the real gateway makes them.

Type, timestamp (±``MAX_SKEW_SECONDS``), app key, token (expiry, app), signature, scope, the
per-app-key token bucket and injected faults (``reference/upstream-apis.md`` §3.13); and
the envelope every answer is wrapped in.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from simulators.temu.core import StateCore
from simulators.temu.wire import (
    API_TYPES,
    APP_KEY_UNKNOWN,
    MAX_SKEW_SECONDS,
    NO_APP_KEY,
    NO_SIGN,
    NO_TIMESTAMP,
    NO_TOKEN,
    NO_TYPE,
    OK,
    RATE_LIMITED,
    SIGN_INVALID,
    SYSTEM_EXCEPTION,
    TIMESTAMP_AHEAD,
    TIMESTAMP_EXPIRED,
    TOKEN_APP_MISMATCH,
    TOKEN_EXPIRED,
    TOKEN_SCOPE,
    TOKEN_UNKNOWN,
    TYPE_NOT_EXISTS,
    Reject,
    temu_sign,
)


class GatewayMixin(StateCore):
    """Admission of a router request (``_admit``) and the answer envelope (``_envelope``)."""

    def _envelope(self, code: int, message: str, result: Any = None) -> dict[str, Any]:
        """TEMU's answer body (HTTP 200 for errors too); counts the code."""
        with self._lock:
            self.error_codes[code] += 1
        envelope: dict[str, Any] = {
            "success": code == OK,
            "errorCode": code,
            "errorMsg": message,
            "requestId": f"us-{uuid.uuid4()}",
        }
        if code == OK:
            envelope["result"] = result
        return envelope

    def _admit(self, body: dict[str, Any], arrived: float) -> dict[str, Any]:
        """Gateway checks; the token's grant, or ``Reject`` for the first check that fails."""
        api_type = body.get("type")
        if not api_type:
            raise Reject(NO_TYPE, "The type parameter is required")
        if api_type not in API_TYPES:
            raise Reject(TYPE_NOT_EXISTS, f"The api type {api_type} does not exist")
        stamp = body.get("timestamp")
        if stamp is None:
            raise Reject(NO_TIMESTAMP, "The timestamp parameter is required")
        try:
            skew = float(stamp) - self.now()
        except (TypeError, ValueError):
            raise Reject(NO_TIMESTAMP, "The timestamp parameter is invalid") from None
        if skew > MAX_SKEW_SECONDS:
            raise Reject(TIMESTAMP_AHEAD, "Timestamp invalid: it is ahead of the server time")
        if skew < -MAX_SKEW_SECONDS:
            raise Reject(TIMESTAMP_EXPIRED, "Timestamp expired")
        app_key = body.get("app_key")
        token = body.get("access_token")
        with self._lock:
            if not app_key:
                raise Reject(NO_APP_KEY, "The app_key parameter is required")
            secret = self.apps.get(str(app_key))
            if secret is None:
                raise Reject(APP_KEY_UNKNOWN, "The app_key does not exist")
            if not token:
                raise Reject(NO_TOKEN, "The access_token parameter is required")
            grant = self.tokens.get(str(token))
            if grant is None:
                raise Reject(TOKEN_UNKNOWN, "The access_token does not exist")
            if grant["expires_at"] is not None and grant["expires_at"] <= self.clock():
                raise Reject(TOKEN_EXPIRED, "The access_token has expired or been refreshed")
            if grant["app_key"] != app_key:
                raise Reject(TOKEN_APP_MISMATCH, "The access_token does not belong to app_key")
        given = body.get("sign")
        if not given:
            raise Reject(NO_SIGN, "The sign parameter is required")
        if not secrets.compare_digest(str(given), temu_sign(secret, body)):
            raise Reject(SIGN_INVALID, "Sign invalid.")
        with self._lock:
            if grant["scopes"] is not None and api_type not in grant["scopes"]:
                raise Reject(TOKEN_SCOPE, f"The access_token has no permission for {api_type}")
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                raise Reject(RATE_LIMITED, "RATE_LIMIT_EXCEED_EXCEPTION")
            capacity = float(self.burst or self.qps)
            tokens, last = self._buckets.get(str(app_key), (capacity, arrived))
            tokens = min(capacity, tokens + (arrived - last) * self.qps)
            if tokens < 1:
                self._buckets[str(app_key)] = (tokens, arrived)
                raise Reject(RATE_LIMITED, "RATE_LIMIT_EXCEED_EXCEPTION")
            self._buckets[str(app_key)] = (tokens - 1, arrived)
            if self.fail_next > 0:
                self.fail_next -= 1
                raise Reject(SYSTEM_EXCEPTION, "SYSTEM_EXCEPTION (simulated)")
            if self.error_rate and self._rng.random() < self.error_rate:
                raise Reject(SYSTEM_EXCEPTION, "SYSTEM_EXCEPTION (simulated)")
        return dict(grant)
