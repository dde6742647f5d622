"""HTTP helpers shared by the upstream clients."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx


def retry_after(response: httpx.Response, message: str, in_text: re.Pattern[str]) -> float | None:
    """Seconds the upstream asked us to wait, or ``None`` when it did not say.

    ``Retry-After`` wins (seconds or an HTTP date); otherwise ``in_text`` finds a number of
    seconds in the error message ("Please wait 3 seconds"), since some APIs only say it there.
    """
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(header)
            return max(0.0, (when - datetime.now(when.tzinfo or UTC)).total_seconds())
        except (TypeError, ValueError, IndexError):
            pass
    match = in_text.search(message)
    return float(match.group(1)) if match else None
