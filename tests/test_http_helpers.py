"""The helpers every upstream client shares: ``retry_after``, ``redact`` and ``as_text``.

One copy each (they were duplicated per client); these tests pin what each client relied on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from connectors.http import redact, retry_after
from infra.redis_text import as_text
from models.clock import ManualClock
from tests.clocks import default_clock_at

SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*seconds?", re.IGNORECASE)


@pytest.fixture
def manual_now() -> Iterator[ManualClock]:
    """The process-wide clock at a fixed instant, restored afterwards."""
    with default_clock_at(datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)) as manual:
        yield manual


def answer(headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(429, headers=headers or {})


def test_retry_after_in_seconds_wins_over_the_message() -> None:
    assert retry_after(answer({"Retry-After": "7"}), "wait 3 seconds", SECONDS) == 7.0
    assert retry_after(answer({"Retry-After": "-2"})) == 0.0


def test_retry_after_as_an_http_date_counts_from_the_injected_clock(
    manual_now: ManualClock,
) -> None:
    """Time is an input: a date 30 s after "now" is a 30 s wait, whatever the wall clock says."""
    header = {"Retry-After": "Sun, 01 Mar 2026 12:00:30 GMT"}
    assert retry_after(answer(header)) == pytest.approx(30.0)
    assert retry_after(answer({"Retry-After": "Sun, 01 Mar 2026 11:59:00 GMT"})) == 0.0


def test_retry_after_falls_back_to_the_message_then_to_none() -> None:
    assert retry_after(answer(), "Please wait 3 seconds", SECONDS) == 3.0
    assert retry_after(answer({"Retry-After": "soon"}), "no number here", SECONDS) is None
    assert retry_after(answer(), "Please wait 3 seconds") is None  # no pattern: header only


def test_redact_hides_every_secret_and_skips_empty_ones() -> None:
    text = "token=abc123 key=s3cret again abc123"
    assert redact(text, ("abc123", None, "", "s3cret")) == "token=*** key=*** again ***"
    assert redact("nothing secret", ()) == "nothing secret"


def test_as_text_decodes_redis_bytes_and_keeps_a_missing_key() -> None:
    assert as_text(b"caf\xc3\xa9") == "café"
    assert as_text("plain") == "plain"
    assert as_text(None) is None
