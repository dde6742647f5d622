"""Every TEMU ``errorCode`` maps to the error type that carries its recovery, naming what to fix."""

from __future__ import annotations

import pytest

from connectors.temu.errors import (
    TemuBusinessError,
    TemuRateLimitError,
    TemuRejectedError,
    TemuRetryableError,
    error_for,
)


@pytest.mark.parametrize(
    ("code", "kind", "setting", "said"),
    [
        (3000001, TemuRejectedError, "app_secret of shop s1 (TEMU_SHOPS)", "signature"),
        (3000011, TemuRejectedError, "the worker's clock", "NTP"),
        (3000012, TemuRejectedError, "the worker's clock", "NTP"),
        (3000026, TemuRejectedError, "app_key of shop s1 (TEMU_SHOPS)", "app key"),
        (3000034, TemuRejectedError, "access_token of shop s1 (TEMU_SHOPS)", "seller token"),
        (3000032, TemuRejectedError, "access_token of shop s1 (TEMU_SHOPS)", "scope bg.x"),
        (3000099, TemuRejectedError, None, "gateway rejected"),
        (5000003, TemuRejectedError, None, "IP whitelist"),
        (5000010, TemuRejectedError, "access_token of shop s1 (TEMU_SHOPS)", "authorization"),
        (4000004, TemuRateLimitError, None, "Rate limit"),
        (4000000, TemuRetryableError, None, "system exception"),
        (150010005, TemuRetryableError, None, "150010005 busy"),
        (140020002, TemuBusinessError, None, "140020002 busy"),
    ],
)
def test_code_maps_to_its_recovery(
    code: int, kind: type[Exception], setting: str | None, said: str
) -> None:
    error = error_for(code, "busy", api_type="bg.x", shop_id="s1", request_id="r-1")
    assert type(error) is kind
    assert getattr(error, "setting", None) == setting
    assert said in str(error)
    assert "[requestId r-1]" in str(error)
    assert (error.code, error.api_type, error.shop_id, error.request_id) == (
        code,
        "bg.x",
        "s1",
        "r-1",
    )
