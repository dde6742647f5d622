"""The Advoware simulator's appointment list reads one owner's appointments, kept current.

``list_termine`` used to scan every appointment of the Kanzlei per request; it now reads an
index by owner, rebuilt after an add, a delete or a change of owner. These tests pin that
the index never serves a stale answer.
"""

from __future__ import annotations

from datetime import date, datetime

from simulators.advoware import AdvowareState

FIRST, LAST = date(2026, 1, 1), date(2026, 12, 31)
ALL_TIME = (date(2000, 1, 1), date(2100, 1, 1))


def listed(state: AdvowareState, kuerzel: str) -> list[int]:
    return [t["frNr"] for t in state.list_termine(kuerzel, *ALL_TIME)]


def owned(state: AdvowareState, kuerzel: str) -> list[int]:
    return [t["frNr"] for t in state.appointments(kuerzel)]


def test_list_follows_adds_deletes_and_new_owners() -> None:
    state = AdvowareState()
    state.seed(4, 20, FIRST, LAST, seed=3)
    codes = [e["kuerzel"] for e in state.employees()]
    a, b = codes[0], codes[1]
    assert all(listed(state, k) == owned(state, k) and listed(state, k) for k in codes)

    moved, gone = owned(state, a)[0], owned(state, a)[1]
    state.reassign(moved, b)
    state.delete(gone)
    new = state.add(a, datetime(2026, 6, 1, 9), datetime(2026, 6, 1, 10))
    general = state.add("ALLE", datetime(2026, 6, 2, 9), datetime(2026, 6, 2, 10))

    assert moved not in listed(state, a) and moved in listed(state, b)
    assert gone not in listed(state, a)
    assert new in listed(state, a)
    assert general in listed(state, "Allgemein")
    assert all(listed(state, k) == owned(state, k) for k in codes)

    state.seed(2, 5, FIRST, LAST, seed=4)  # replaces the Kanzlei
    assert all(listed(state, k) == owned(state, k) for k in codes)
