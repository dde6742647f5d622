"""TEMU Open Platform (partner API): signed client, error mapping and wire models.

The order and inventory workflows call TEMU through ``TemuClient`` (one per shop and
worker), which signs every request, keeps all worker processes together under the app key's
rate limit through ``infra.rate_limit.RedisRateLimiter`` and raises typed errors whose class
says how to recover. ``connector.py`` (the registry entry) builds on these.
"""

from connectors.temu.client import TemuClient, encode_body, sign
from connectors.temu.errors import (
    ORDER_NOT_FOUND,
    TemuBusinessError,
    TemuError,
    TemuLocalRefusal,
    TemuRateLimitError,
    TemuRejectedError,
    TemuRetryableError,
    error_for,
)
from connectors.temu.schemas import (
    OrderLine,
    ParentOrder,
    ParentOrderMap,
    ParentOrderStatus,
    SkuStock,
)

__all__ = [
    "ORDER_NOT_FOUND",
    "OrderLine",
    "ParentOrder",
    "ParentOrderMap",
    "ParentOrderStatus",
    "SkuStock",
    "TemuBusinessError",
    "TemuClient",
    "TemuError",
    "TemuLocalRefusal",
    "TemuRateLimitError",
    "TemuRejectedError",
    "TemuRetryableError",
    "encode_body",
    "error_for",
    "sign",
]
