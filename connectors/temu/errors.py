"""TEMU error codes turned into synchub's typed errors.

TEMU answers HTTP 200 with ``{"success": false, "errorCode": ..., "errorMsg": ...}`` for
every failure (``reference/upstream-apis.md`` §3.4, §3.10). What recovers a failure depends
only on the code, so it is decided here, once:

* ``3xxxxxx`` (gateway rejected the request: signature, clock, app key, token, scope) and
  ``5000000``-``5000003`` (authorization, environment, IP whitelist) are permanent; the
  message names what the operator must fix.
* ``4000004`` (rate limit), ``4000000`` (system exception) and ``150010005`` (try again
  later) are retryable; ``4000004`` hints one second.
* Every other code is a business answer (``140020002`` order not found, a rejected
  shipment, a duplicate ``requestUniqueKey``...): ``TemuBusinessError`` carries the code so
  callers can act on specific ones.

Messages name the shop by its id only; the caller redacts the secret and the token from the
upstream's text before it gets here.
"""

from __future__ import annotations

from models.errors import PermanentError, RetryableError, SyncError

SHOPS_SETTING = "TEMU_SHOPS"

SUCCESS = 1000000
"""``errorCode`` of a successful call."""
SIGN_INVALID = 3000001
TIMESTAMP_AHEAD = 3000011
TIMESTAMP_EXPIRED = 3000012
APP_KEY_CODES = frozenset({3000025, 3000026, 3000027, 3000028})
"""app_key missing / unknown / without permission / suspended."""
TOKEN_CODES = frozenset({3000030, 3000031, 3000033, 3000034})
"""access_token missing / unknown / of another app / expired or refreshed."""
SCOPE_MISSING = 3000032
SYSTEM_EXCEPTION = 4000000
RATE_LIMITED = 4000004
TRY_AGAIN_LATER = 150010005
ORDER_NOT_FOUND = 140020002
DUPLICATE_REQUEST = 150010020
"""[I] ``bg.local.goods.stock.edit`` with a ``requestUniqueKey`` used before: nothing applied
this time, because the earlier request with that key was (TEMU documents no code; the
simulator's)."""
RETRYABLE_CODES = frozenset({SYSTEM_EXCEPTION, RATE_LIMITED, TRY_AGAIN_LATER})
RATE_LIMIT_RETRY_AFTER = 1.0
"""Seconds to wait after ``4000004``: TEMU's buckets refill per second."""


class TemuError(SyncError):
    """Base of every error the TEMU client raises; always also Retryable or Permanent.

    Attributes:
        code: TEMU ``errorCode`` (``None`` for HTTP or transport failures).
        api_type: the method called, e.g. ``bg.order.list.v2.get``.
        shop_id: the shop (``TemuShop.id``) the call was made for.
        request_id: TEMU's ``requestId``, to quote to TEMU support.
    """

    code: int | None = None
    api_type: str | None = None
    shop_id: str | None = None
    request_id: str | None = None

    def _tag(
        self, code: int | None, api_type: str, shop_id: str, request_id: str | None
    ) -> TemuError:
        self.code, self.api_type, self.shop_id, self.request_id = (
            code,
            api_type,
            shop_id,
            request_id,
        )
        return self


class TemuRejectedError(TemuError, PermanentError):
    """The gateway refused the request (credentials, clock, scope, bad parameters)."""


class TemuRetryableError(TemuError, RetryableError):
    """Transient: system exception, try again later, HTTP 429/5xx, timeouts."""


class TemuRateLimitError(TemuRetryableError):
    """``4000004``: the app key's per-second budget was spent (by us or a neighbour)."""


class TemuBusinessError(TemuError, PermanentError):
    """A business answer such as "order not found"; ``code`` says which."""


class TemuLocalRefusal(TemuBusinessError):
    """Refused by the client before anything was sent to TEMU (``code`` is ``None``).

    E.g. a shipment of an order with no line left to ship (cancelled): TEMU never saw it,
    so it must not be reported as TEMU's rejection.
    """


def error_for(
    code: int,
    message: str,
    *,
    api_type: str,
    shop_id: str,
    request_id: str | None = None,
) -> TemuError:
    """The typed error for a TEMU envelope with ``success: false``.

    Args:
        code: ``errorCode``.
        message: ``errorMsg``, already redacted.
        api_type: the method that was called.
        shop_id: the shop it was called for.
        request_id: ``requestId`` of the answer.
    """
    shop = f"shop {shop_id}"
    said = f"TEMU {api_type} for {shop}: {code} {message or 'no message'}"
    if request_id:
        said += f" [requestId {request_id}]"
    error = _refusal(code, said, shop, api_type) or _retryable(code, said, shop)
    if error is None:
        error = TemuBusinessError(said)
    return error._tag(code, api_type, shop_id, request_id)


def _refusal(code: int, said: str, shop: str, api_type: str) -> TemuError | None:
    """Refused credentials, clock or permission: what to fix, naming the setting."""
    if code == SIGN_INVALID:
        setting = f"app_secret of {shop} ({SHOPS_SETTING})"
        return TemuRejectedError(
            f"{said}. The signature was rejected: fix the {setting}", setting=setting
        )
    if code in (TIMESTAMP_AHEAD, TIMESTAMP_EXPIRED):
        return TemuRejectedError(
            f"{said}. The request timestamp is more than 300 s off TEMU's clock: fix the "
            "worker's clock (NTP)",
            setting="the worker's clock",
        )
    if code in APP_KEY_CODES:
        setting = f"app_key of {shop} ({SHOPS_SETTING})"
        return TemuRejectedError(
            f"{said}. The app key is missing, unknown, not permitted or suspended: fix the "
            f"{setting}; app key, secret, token and region must all belong together",
            setting=setting,
        )
    if code in TOKEN_CODES:
        setting = f"access_token of {shop} ({SHOPS_SETTING})"
        return TemuRejectedError(
            f"{said}. The seller token is missing, unknown, expired or issued to another "
            f"app: renew the {setting} in the TEMU seller center",
            setting=setting,
        )
    if code == SCOPE_MISSING:
        return TemuRejectedError(
            f"{said}. The token lacks the API scope {api_type}; grant it in the TEMU seller "
            f"center and renew the access_token of {shop} ({SHOPS_SETTING})",
            setting=f"access_token of {shop} ({SHOPS_SETTING})",
        )
    if 3000000 <= code <= 3999999:
        return TemuRejectedError(f"{said}. The TEMU gateway rejected the request")
    if code == 5000003:
        return TemuRejectedError(
            f"{said}. Add the worker's outgoing IP address to the app's IP whitelist"
        )
    if 5000000 <= code <= 5999999:
        setting = f"access_token of {shop} ({SHOPS_SETTING})"
        return TemuRejectedError(
            f"{said}. TEMU does not allow this app on this shop: check the authorization "
            f"and the {setting}",
            setting=setting,
        )
    return None


def _retryable(code: int, said: str, shop: str) -> TemuError | None:
    """The rate limit and TEMU's transient failures: worth another try."""
    if code == RATE_LIMITED:
        return TemuRateLimitError(
            f"{said}. Rate limit of the app key exceeded", retry_after=RATE_LIMIT_RETRY_AFTER
        )
    if code == SYSTEM_EXCEPTION:
        return TemuRetryableError(
            f"{said}. TEMU system exception; if it persists, check the app_key of {shop} "
            f"({SHOPS_SETTING}): TEMU also answers 4000000 for an unknown app"
        )
    if code == TRY_AGAIN_LATER:
        return TemuRetryableError(said)
    return None
