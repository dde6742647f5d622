"""The pure plan of a TEMU inventory batch: which SKUs get an edit, under which key.

No Redis, no TEMU: ``plan_batch`` decides from the desired values, the last pushes and
TEMU's current stock, so each rule is checked in microseconds here; the end-to-end runs
are in ``test_temu_inventory.py``.
"""

from __future__ import annotations

from activities.temu_stock_plan import (
    STALE_READ_SECONDS,
    Pushed,
    desired_from_message,
    plan_batch,
    request_unique_key,
)

SHOP = "us-main"
NOW = 1_800_000_000.0


def row(sku: str, stock: int, goods: int = 7, sku_id: int | None = None) -> dict[str, object]:
    return {
        "outSkuSn": sku,
        "skuId": sku_id or 100 + ord(sku[0]),
        "goodsId": goods,
        "stock": stock,
    }


def test_equal_and_unknown_skus_are_settled_and_the_rest_edited_per_product() -> None:
    skus = ["a", "b", "c", "d"]
    desired = [b"5:0-1", b"9:0-2", b"3:0-3", None]  # d: the ERP never set it
    current = {"a": row("a", 5), "b": row("b", 1), "c": row("c", 0, goods=8)}  # d unknown too
    decision = plan_batch(SHOP, skus, desired, [None] * 4, current, NOW)
    plan = decision.plan
    assert decision.settled == ["a", "d"]
    assert decision.pending == []
    assert (plan.counts.fetched, plan.counts.unchanged, plan.counts.not_listed) == (4, 1, 1)
    assert [(e.goods_id, [c.sku for c in e.changes]) for e in plan.edits] == [
        (7, ["b"]),
        (8, ["c"]),
    ]
    edit = plan.edits[0]
    assert edit.key == request_unique_key(SHOP, 7, edit.changes)
    assert (edit.changes[0].from_stock, edit.changes[0].to, edit.changes[0].gen) == (1, 9, 0)


def test_our_own_recent_edit_not_visible_yet_is_pending_not_pushed_again() -> None:
    pushed = Pushed("0-2", 0, NOW - STALE_READ_SECONDS / 2, True).dump()
    decision = plan_batch(SHOP, ["b"], [b"9:0-2"], [pushed.encode()], {"b": row("b", 1)}, NOW)
    assert decision.plan.edits == []
    assert decision.pending == ["b"]
    assert decision.plan.counts.unchanged == 1


def test_drift_long_after_a_confirmed_edit_is_pushed_again_under_a_new_key() -> None:
    pushed = Pushed("0-2", 0, NOW - STALE_READ_SECONDS * 2, True).dump()
    first = plan_batch(SHOP, ["b"], [b"9:0-2"], [None], {"b": row("b", 1)}, NOW)
    again = plan_batch(SHOP, ["b"], [b"9:0-2"], [pushed], {"b": row("b", 1)}, NOW)
    assert again.plan.edits[0].changes[0].gen == 1
    assert again.plan.edits[0].key != first.plan.edits[0].key


def test_a_rejected_edit_keeps_the_generation_it_was_given_for_its_retry() -> None:
    pushed = Pushed("0-2", 3, NOW - 1, False).dump()  # rejected: stored with gen + 1 already
    decision = plan_batch(SHOP, ["b"], [b"9:0-2"], [pushed], {"b": row("b", 1)}, NOW)
    assert decision.plan.edits[0].changes[0].gen == 3


def test_desired_stock_messages_tombstones_and_malformed_values() -> None:
    assert desired_from_message(b'{"stock": 4}') == 4
    assert desired_from_message(None) == 0  # withdrawn SKU: stop selling
    for bad in (b"not json", b'{"stock": -1}', b'{"stock": true}', b"[1]"):
        assert desired_from_message(bad) is None
