"""The When I Work simulator for the benchmark, driven through its admin API.

By default the simulator runs in a child process, so rendering thousands of shifts into JSON
does not compete with the worker for this process's GIL (the real upstream is another machine
too) and the benchmark's peak RSS is the worker's, not the simulator's. With
``in_process=True`` it runs in a thread of this process, as the tests run it. Either way the
benchmark changes the simulator's state only through ``/_admin`` routes over real HTTP.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from simulators.server import ThreadedServer
from simulators.wiw import make_sim_app

SIM_TOKEN = "bench-static-token"
"""Pre-issued W-Token the simulator accepts and the worker sends (``WIW_KEY``)."""
ROOT = Path(__file__).resolve().parent.parent
"""The repository root: the child process imports ``simulators`` from here."""
UNTHROTTLED = 1_000_000_000
"""Requests per minute allowed by the simulator's rate limit: never reached."""


def serve() -> None:
    """Child process body (``python -m bench.sim``): serve until stdin closes.

    Prints the simulator's URL on the first line of stdout once it listens. The parent keeps
    stdin open and closes it to stop the child, so the child also ends when the parent dies.
    """
    _, app = make_sim_app(timezone="UTC", static_token=SIM_TOKEN)
    server = ThreadedServer(app).start()
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()


class Simulator:
    """A running WIW simulator and an admin client for it.

    Args:
        in_process: Serve from a thread of this process instead of a child process.

    """

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

    def start(self) -> Simulator:
        """Start serving and wait until the simulator answers.

        Raises:
            RuntimeError: the child process did not report its address.

        """
        if self.in_process:
            _, app = make_sim_app(timezone="UTC", static_token=SIM_TOKEN)
            self._server = ThreadedServer(app).start()
            self.url = self._server.url
        else:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "bench.sim"],
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
                raise RuntimeError(f"the WIW simulator process did not start (said {line!r})")
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

    def __enter__(self) -> Simulator:
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
                f"simulator {method} {path}: HTTP {response.status_code}: {response.text[:200]}"
            )
        return response.json() if response.content else None

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


if __name__ == "__main__":
    serve()
