"""Kaufland request signing: a fixed vector, and the simulator's checks over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from connectors.kaufland.client import sign
from simulators.kaufland import SIM_CLIENT_KEY, SIM_SECRET_KEY, KauflandState, make_sim_app
from simulators.kaufland.state import kaufland_sign
from simulators.server import ThreadedServer

DOC_SECRET = "a7d0cb1da1ddbc86c96ee5fedd341b7d8ebfbb2f5c83cfe0909f4e57f05dd403"
"""The example secret key of Kaufland's "Rest API" page."""
URL = "https://sellerapi.kaufland.com/v2/order-units?storefront=de&limit=100"


def test_signature_matches_a_vector_computed_with_openssl() -> None:
    # printf 'GET\n<URL>\n\n1700000000' | openssl dgst -sha256 -hmac <DOC_SECRET>
    expected = "612cda219fd180c904311ad554b6b2d6444d0b4e38dcd967862cd2a1dbda527e"
    assert sign("get", URL, "", 1700000000, DOC_SECRET) == expected
    assert kaufland_sign("GET", URL, "", "1700000000", DOC_SECRET) == expected


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[KauflandState, ThreadedServer]]:
    state, app = make_sim_app()
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


def headers(url: str, *, stamp: int | None = None, secret: str = SIM_SECRET_KEY) -> dict[str, str]:
    ts = int(time.time()) if stamp is None else stamp
    return {
        "Shop-Client-Key": SIM_CLIENT_KEY,
        "Shop-Timestamp": str(ts),
        "Shop-Signature": sign("GET", url, "", ts, secret),
        "User-Agent": "synchub-test",
    }


@pytest.mark.parametrize("missing", ["Shop-Client-Key", "Shop-Timestamp", "Shop-Signature"])
def test_missing_header_is_refused_naming_it(served, missing: str) -> None:
    _, server = served
    url = f"{server.url}/v2/order-units?storefront=de"
    sent = {k: v for k, v in headers(url).items() if k != missing}
    answer = httpx.get(url, headers=sent)
    assert answer.status_code == 401
    assert missing.lower() in answer.json()["message"].lower()


def test_signature_covers_the_query(served) -> None:
    _, server = served
    url = f"{server.url}/v2/order-units?storefront=de"
    ok = httpx.get(url, headers=headers(url))
    assert ok.status_code == 200, ok.text
    tampered = httpx.get(f"{url}&limit=5", headers=headers(url))
    assert tampered.status_code == 401
    assert tampered.json()["message"] == "signature does not match"


def test_expired_timestamp_and_wrong_secret_are_refused(served) -> None:
    _, server = served
    url = f"{server.url}/v2/order-units?storefront=de"
    old = httpx.get(url, headers=headers(url, stamp=int(time.time()) - 400))
    assert old.status_code == 401 and "timestamp" in old.json()["message"].lower()
    wrong = httpx.get(url, headers=headers(url, secret="x" * 64))
    assert wrong.status_code == 401


def test_unknown_storefront_and_oversized_page_are_bad_requests(served) -> None:
    _, server = served
    for query in ("storefront=xx", "storefront=de&limit=101", ""):
        url = f"{server.url}/v2/order-units" + (f"?{query}" if query else "")
        answer = httpx.get(url, headers=headers(url))
        assert answer.status_code == 400, (query, answer.text)


def test_orders_group_their_units(served) -> None:
    state, server = served
    ids = state.add_units(4, storefront="cz", per_order=2)
    state.change(ids[:1], status="sent", at=state.now() + 5)
    url = f"{server.url}/v2/orders?storefront=cz"
    listed = httpx.get(url, headers=headers(url)).json()
    assert listed["pagination"]["total"] == 2
    order = next(o for o in listed["data"] if o["order_units_count"] == 2)
    one = f"{server.url}/v2/orders/{order['id_order']}"
    detail = httpx.get(one, headers=headers(one)).json()["data"]
    assert len(detail["order_units"]) == 2
    assert detail["ts_units_updated_iso"] >= detail["ts_created_iso"]
    unit = f"{server.url}/v2/order-units/{ids[0]}"
    assert httpx.get(unit, headers=headers(unit)).json()["data"]["status"] == "sent"
    missing = f"{server.url}/v2/order-units/1"
    assert httpx.get(missing, headers=headers(missing)).status_code == 404


def test_reset_accepts_the_keys_the_simulator_was_built_with_again() -> None:
    """A simulator built with other keys (the contract suite's) goes back to them."""
    client, secret = "own-client-key-" + "1" * 17, "own-secret-" + "2" * 53
    state = KauflandState(client_key=client, secret_key=secret)
    url = "http://sim/v2/order-units?storefront=de"
    stamp = str(int(state.now()))

    def refused(key: str, signing: str) -> str | None:
        sig = kaufland_sign("GET", url, "", stamp, signing)
        sent = {"shop-client-key": key, "shop-timestamp": stamp, "shop-signature": sig}
        answer = state.check("GET", url, sent, "")
        return None if answer is None else str(answer.body["message"])

    state.rotate_keys(SIM_CLIENT_KEY, SIM_SECRET_KEY)
    assert refused(client, secret) == "unknown client key"
    state.reset()
    assert refused(client, secret) is None
    assert refused(SIM_CLIENT_KEY, SIM_SECRET_KEY) == "unknown client key"
