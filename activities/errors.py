"""Turn synchub's typed errors into Temporal failures with the matching retry behaviour."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from models.errors import PermanentError, RetryableError

P = ParamSpec("P")
T = TypeVar("T")


def translate_errors(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Decorate an activity so retryable errors honour ``Retry-After`` and permanent ones stop.

    The message is kept as is: connectors write messages that are safe for history.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except RetryableError as exc:
            delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
            raise ApplicationError(
                str(exc), type="RetryableError", next_retry_delay=delay
            ) from None
        except PermanentError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None

    return wrapper
