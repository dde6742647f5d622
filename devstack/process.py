"""One long-running binary as a child process: launched, awaited until ready, stopped whole.

Every child runs in its own session (process group). Stopping signals the whole group, so no
grandchild survives, and a finalizer stops whatever is left when the interpreter exits. A parent
killed with SIGKILL cannot clean up; its children then keep their ports until killed by hand.

Why not ``mirakuru`` (compared for issue 14): it is larger (about 1,350 lines plus ``psutil``)
and would still need our readiness probes, log file and port check. It starts children with
``preexec_fn=os.setsid``, which is unsafe with threads (the stack starts its services in
parallel threads; ``start_new_session=True`` is safe); it pipes output by default (a chatty
server blocks once the pipe is full) and its errors quote no log lines; its timeouts use the
wall clock; and its blocking ``stop()`` would make stopping the stack take the sum of the
services' stop times instead of the slowest one's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.05
"""How often readiness and a stopping group are checked."""
_LOG_TAIL_LINES = 30


class ServiceError(RuntimeError):
    """A service could not start; the message says why and quotes the end of its log."""


def _stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, then SIGKILL it after ``grace`` seconds.

    A module-level function (not a method) so the finalizer holding it keeps no reference to
    the ``ServiceProcess`` and does not keep it alive.
    """
    pgid = proc.pid  # start_new_session=True makes the child the leader of its own group
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait()
    # The leader is gone; grandchildren it left behind in the group get no second chance.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return  # the usual case: the group died with its leader
    # SIGKILL is delivered asynchronously; give the stragglers a moment to disappear so a
    # caller that checks (or reuses the ports) right after stop() sees them gone.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(POLL_SECONDS)


class ServiceProcess:
    """One long-running binary as a child process, with a readiness check and a clean stop.

    Output goes to a log file (appended, so a restart keeps the earlier run's lines); error
    messages quote only what this run wrote. The child gets its own session so a terminal's
    Ctrl-C reaches only the parent, which then stops the child in order, and so stopping can
    signal the whole process group.

    Args:
        name: Human name used in messages ("Temporal dev server").
        argv: Program and arguments.
        log_path: File the child's stdout and stderr are appended to.
        ready: Probe that returns True once the service answers; exceptions count as "not yet"
            and the last one is quoted if the service never becomes ready.
        startup_timeout: Seconds to wait for ``ready``.
        stop_grace: Seconds between SIGTERM and SIGKILL when stopping.
        env: Environment of the child; the parent's when None.

    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        ready: Callable[[], bool],
        *,
        startup_timeout: float = 30.0,
        stop_grace: float = 10.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self._ready = ready
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self._env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._log_offset = 0
        self.ready_seconds: float | None = None
        """Seconds from launch until the readiness probe succeeded; None until then."""

    @property
    def pid(self) -> int | None:
        """Process id of the child (also its process group id), None before start."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the child process exists and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines this run wrote to the log (earlier runs are skipped)."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(self._log_offset)
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> ServiceProcess:
        """Launch the child and block until it is ready.

        Raises:
            ServiceError: the binary is missing, the child exited before it was ready, or it was
                not ready within ``startup_timeout``; the child is stopped before raising.

        """
        if self._proc is not None:
            raise RuntimeError(f"{self.name} was already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=self._env,
                    close_fds=True,
                )
            except OSError as exc:
                raise ServiceError(
                    f"{self.name} could not be launched ({self.argv[0]}): {exc}"
                ) from exc
        # Runs on stop(), on garbage collection and at interpreter exit, whichever comes first.
        self._finalizer = weakref.finalize(self, _stop_process, self._proc, self.stop_grace)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        launched = time.monotonic()
        deadline = launched + self.startup_timeout
        last_error = ""
        while True:
            code = self._proc.poll()
            if code is not None:
                raise ServiceError(
                    f"{self.name} exited with code {code} before it was ready.\n"
                    f"command: {' '.join(self.argv)}\n"
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if self._ready():
                    self.ready_seconds = time.monotonic() - launched
                    return
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                why = f" (last probe error: {last_error})" if last_error else ""
                raise ServiceError(
                    f"{self.name} was not ready after {self.startup_timeout:.0f} s{why}.\n"
                    f"command: {' '.join(self.argv)}\n"
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(POLL_SECONDS)

    def terminate(self) -> None:
        """Send SIGTERM to the child's process group without waiting (``stop()`` waits)."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        """Stop the child and its process group (SIGTERM, then SIGKILL); safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()
