"""The upstream simulators of the benchmark, driven through their admin APIs.

By default a simulator runs in a child process (``python -m bench.sim KIND``), so rendering
thousands of records into JSON does not compete with the worker for this process's GIL (the
real upstream is another machine too) and the benchmark's peak RSS is the worker's, not the
simulator's. With ``in_process=True`` it runs in a thread of this process, as the tests run
it. Either way the benchmark changes the simulator's state only through ``/_admin`` routes
over real HTTP.

``Simulator`` is the When I Work simulator, ``AdvowareSimulator`` the Advoware one,
``TemuSimulator`` the TEMU one.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

from models import clock
from simulators import advoware as advoware_sim
from simulators import temu as temu_sim
from simulators import wiw as wiw_sim
from simulators.server import ThreadedServer

SIM_TOKEN = "bench-static-token"
"""Pre-issued W-Token the simulator accepts and the worker sends (``WIW_KEY``)."""
ROOT = Path(__file__).resolve().parent.parent
"""The repository root: the child process imports ``simulators`` from here."""
UNTHROTTLED = 1_000_000_000
"""Requests per minute allowed by the simulator's rate limit: never reached."""
KINDS = ("wiw", "advoware", "temu")
"""Simulators ``python -m bench.sim`` can serve."""


def make_app(kind: str) -> Any:
    """The ASGI app of simulator ``kind`` (``wiw``, ``advoware`` or ``temu``), default setup.

    The Advoware simulator keeps its default credentials (``AdvowareState()``), which the
    benchmark's worker reads from an ``AdvowareState()`` of its own; the TEMU simulator its
    default app key, secret and token (``simulators.temu.SIM_*``) and its 20 QPS bucket.

    Raises:
        ValueError: an unknown kind.

    """
    if kind == "wiw":
        return wiw_sim.make_sim_app(timezone="UTC", static_token=SIM_TOKEN)[1]
    if kind == "advoware":
        return advoware_sim.make_sim_app()[1]
    if kind == "temu":
        return temu_sim.make_sim_app()[1]
    raise ValueError(f"unknown simulator {kind!r}; known: {', '.join(KINDS)}")


def serve(kind: str = "wiw") -> None:
    """Child process body (``python -m bench.sim KIND``): serve until stdin closes.

    Prints the simulator's URL on the first line of stdout once it listens. The parent keeps
    stdin open and closes it to stop the child, so the child also ends when the parent dies.
    """
    clock.install_from_env()  # the soak harness moves "now" through SYNCHUB_CLOCK_FILE
    server = ThreadedServer(make_app(kind)).start()
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()


class SimulatorProcess:
    """A running simulator of kind ``kind`` and an admin client for it.

    Args:
        in_process: Serve from a thread of this process instead of a child process.

    """

    kind: ClassVar[str] = "wiw"
    """Which simulator (``make_app``)."""

    def __init__(self, *, in_process: bool = False) -> None:
        self.in_process = in_process
        self.url = ""
        self._server: ThreadedServer | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._admin: httpx.Client | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the simulator's child process; None when it runs in-process."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Self:
        """Start serving and wait until the simulator answers.

        Raises:
            RuntimeError: the child process did not report its address.

        """
        if self.in_process:
            self._server = ThreadedServer(make_app(self.kind)).start()
            self.url = self._server.url
        else:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "bench.sim", self.kind],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # Ctrl-C reaches only the parent, which stops the child
            )
            assert self._proc.stdout is not None
            line = self._proc.stdout.readline().strip()
            if not line.startswith("http://"):
                self.stop()
                raise RuntimeError(
                    f"the {self.kind} simulator process did not start (said {line!r})"
                )
            self.url = line
        self._admin = httpx.Client(base_url=self.url, timeout=60.0)
        return self

    def stop(self) -> None:
        """Stop the server (and its process); safe to call twice."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- admin API ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._admin is None:
            raise RuntimeError("the simulator is not running")
        response = self._admin.request(method, path, json=body)
        if response.status_code >= 400:
            raise RuntimeError(
                f"{self.kind} simulator {method} {path}: "
                f"HTTP {response.status_code}: {response.text[:200]}"
            )
        return response.json() if response.content else None


class Simulator(SimulatorProcess):
    """The When I Work simulator (``simulators.wiw``), seeded with generated shifts."""

    kind = "wiw"

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Set fault knobs (``state.set_knobs``); returns every knob.

        Args:
            **knobs: Knob values by name, e.g. ``latency_ms=20``.

        """
        return dict(self._call("POST", "/_admin/knobs", knobs))

    def seed(self, n_shifts: int, days: Iterable[date], seed: int) -> list[int]:
        """Replace every shift by ``n_shifts`` generated ones, round-robin over ``days``.

        Args:
            n_shifts: How many shifts to generate.
            days: Calendar days the shifts start on.
            seed: Seed of the deterministic generator.

        Returns:
            The new shift ids, in creation order.

        """
        body = {"n_shifts": n_shifts, "days": [d.isoformat() for d in days], "seed": seed}
        return [int(i) for i in self._call("POST", "/_admin/seed", body)["ids"]]

    def warm(self, days: list[date]) -> None:
        """Ask for each day and for the whole window once, as the engine and the loop will.

        The simulator renders a shift's JSON when it first serves it and keeps each answered
        body until its state changes (``WiwState.list_shifts_wire``): warmed after a seed or
        a change, the measured runs wait on the engine, not on the fake's first rendering
        (a real upstream does not take seconds to serve a day it already has).
        """
        if self._admin is None:
            raise RuntimeError("the simulator is not running")

        def at(day: date) -> str:
            return datetime.combine(day, time(), tzinfo=UTC).isoformat()

        windows = [(d, d + timedelta(days=1)) for d in days]
        windows.append((days[0], days[-1] + timedelta(days=1)))
        for first, end in windows:
            params = {"start": at(first), "end": at(end), "deleted": "true"}
            response = self._admin.get("/2/shifts", params=params, headers={"W-Token": SIM_TOKEN})
            response.raise_for_status()

    def change(self, shift_ids: Iterable[int], note: str) -> None:
        """Change the notes of each shift (bumps ``updated_at``), one admin call per shift.

        Args:
            shift_ids: Shifts to change.
            note: Prefix of the new notes; the id is appended so every change is distinct.

        """
        for shift_id in shift_ids:
            self._call("PATCH", f"/_admin/shifts/{shift_id}", {"notes": f"{note} {shift_id}"})

    def requests(self) -> dict[str, int]:
        """API requests served so far, per route (cumulative)."""
        return {str(k): int(v) for k, v in self._call("GET", "/_admin/stats")["requests"].items()}


class AdvowareSimulator(SimulatorProcess):
    """The Advoware simulator (``simulators.advoware``), seeded with generated calendars."""

    kind = "advoware"

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Set fault knobs (``AdvowareState.set_knobs``); returns every knob.

        Args:
            **knobs: Knob values by name, e.g. ``latency_ms=20``.

        """
        return dict(self._call("POST", "/_admin/knobs", knobs))

    def seed(
        self, employees: int, appointments_per_employee: int, start: date, end: date, seed: int
    ) -> list[int]:
        """Replace every employee and appointment by generated ones (``AdvowareState.seed``).

        About one in eight employees is inactive; each employee also gets one negative-frNr
        system entry, which a sync must skip.

        Args:
            employees: How many employees.
            appointments_per_employee: Appointments each (system entries extra).
            start: First day appointments may start on.
            end: Last day (inclusive) appointments may start on.
            seed: Seed of the deterministic generator.

        Returns:
            The new (positive) appointment numbers, in creation order.

        """
        body = {
            "n_employees": employees,
            "appointments_per_employee": appointments_per_employee,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "seed": seed,
        }
        return [int(i) for i in self._call("POST", "/_admin/seed", body)["frnrs"]]

    def termine(self) -> list[dict[str, Any]]:
        """Every appointment as the API renders it (system entries included)."""
        return list(self._call("GET", "/_admin/termine")["termine"])

    def stats(self) -> dict[str, Any]:
        """Sizes, cumulative request counters per route, peak requests in flight, knobs."""
        return dict(self._call("GET", "/_admin/stats"))

    def requests(self) -> dict[str, int]:
        """API requests served so far, per route (cumulative)."""
        return {str(k): int(v) for k, v in self.stats()["requests"].items()}


class TemuSimulator(SimulatorProcess):
    """The TEMU simulator (``simulators.temu``): signed router, per-app-key QPS bucket."""

    kind = "temu"

    def set_knobs(self, **knobs: Any) -> dict[str, Any]:
        """Set knobs (``TemuState.set_knobs``, e.g. ``qps``); returns every knob."""
        return dict(self._call("POST", "/_admin/knobs", knobs))

    def knobs(self) -> dict[str, Any]:
        """Current knob values."""
        return dict(self._call("GET", "/_admin/knobs"))

    def seed_orders(self, n: int, start_ts: int, end_ts: int, seed: int) -> list[str]:
        """Replace every order by ``n`` generated ones created and updated in [start, end].

        Returns:
            The new ``parentOrderSn`` s.

        """
        body = {"n": n, "start_ts": start_ts, "end_ts": end_ts, "seed": seed, "replace": True}
        return [str(sn) for sn in self._call("POST", "/_admin/seed_orders", body)["parentOrderSns"]]

    def seed_stock(self, n_goods: int, skus_per_goods: int, seed: int) -> list[int]:
        """Replace the catalogue: ``n_goods`` products x ``skus_per_goods`` SKUs (stock 0-100).

        Returns:
            The SKU ids, in creation order (codes ``SKU-00001``... in the same order).

        """
        body = {"n_goods": n_goods, "skus_per_goods": skus_per_goods, "seed": seed}
        return [int(i) for i in self._call("POST", "/_admin/seed_stock", body)["skuIds"]]

    def stock(self) -> list[dict[str, Any]]:
        """The catalogue: ``{goodsId, skuId, outSkuSn, stock}`` with the latest stock."""
        return list(self._call("GET", "/_admin/stock")["skus"])

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset: requests per type, error codes, ``rate_limited``,
        ``max_requests_per_second`` (any 1-s window), sizes and knobs."""
        return dict(self._call("GET", "/_admin/stats"))

    def request_times(self) -> list[float]:
        """Monotonic arrival times of every router request since the last counter reset."""
        return [float(t) for t in self._call("GET", "/_admin/request_times")["times"]]

    def reset_counters(self) -> None:
        """Zero the request counters and arrival times; refill the rate-limit buckets."""
        self._call("POST", "/_admin/reset_counters")

    def requests(self) -> dict[str, int]:
        """API requests served since the last reset, per ``type``."""
        return {str(k): int(v) for k, v in self.stats()["requests"].items()}


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else "wiw")
