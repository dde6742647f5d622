"""``starter.py dev``, the embedded default, as a user runs it: a subprocess, Ctrl-C to stop.

Every port comes from the environment (free ports, so a developer's own stack is not
disturbed) and the state folder is a temporary one. These tests need no session fixture.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from connectors import REGISTRY
from connectors.schedules import schedule_definitions
from infra.consumer import TopicReader
from settings import Settings
from simulators.server import free_port

ROOT = Path(__file__).parents[1]
TEMPORAL_CLI = Path(sys.executable).parent / "temporal"
PORT_SETTINGS = (
    "SYNCHUB_TEMPORAL_PORT",
    "SYNCHUB_UI_PORT",
    "SYNCHUB_KAFKA_PORT",
    "SYNCHUB_REDIS_PORT",
    "SYNCHUB_WIW_SIM_PORT",
    "SYNCHUB_ADVOWARE_SIM_PORT",
    "SYNCHUB_TEMU_SIM_PORT",
    "SYNCHUB_CODEC_PORT",
)
_SETTING_PREFIXES = (
    "TEMPORAL_",
    "KAFKA_",
    "REDIS_",
    "SYNC_",
    "WIW_",
    "SYNCHUB_",
    "EXPIRE_CACHE",
    "ADVOWARE_",
    "CALENDAR_SYNC_",
    "TEMU_",
)


def dev_env(state_dir: Path) -> dict[str, str]:
    """The user's environment minus synchub settings, with free ports and a fresh state dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SETTING_PREFIXES)}
    ports: set[int] = set()
    while len(ports) < len(PORT_SETTINGS):
        ports.add(free_port())
    env.update(zip(PORT_SETTINGS, (str(p) for p in sorted(ports)), strict=True))
    env["SYNCHUB_STATE_DIR"] = str(state_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---- processes -----------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def descendants(root: int) -> dict[int, tuple[str, str]]:
    """Every live process below ``root``: pid -> (name, start time), by the ppid chain."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, tuple[str, str]] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is None or fields[0] == "Z":
            continue
        found[pid] = (_comm(pid), fields[19])  # field 22 of stat: start time
        todo.extend(children.get(pid, []))
    return found


def still_alive(procs: dict[int, tuple[str, str]]) -> dict[int, str]:
    """The recorded processes that still exist (same pid and start time, not a zombie)."""
    alive = {}
    for pid, (name, started) in procs.items():
        fields = _stat(pid)
        if fields is not None and fields[0] != "Z" and fields[19] == started:
            alive[pid] = name
    return alive


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text`` (e.g. a unique state dir)."""
    hits = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = entry.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and "pytest" not in cmdline:
            hits.append(cmdline)
    return hits


@dataclass
class Dev:
    """A running ``starter.py dev`` with its stdout lines arriving on a queue."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[str | None]
    stderr_path: Path
    seen: list[str]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def until(self, pattern: str, deadline: float) -> re.Match[str]:
        """Read stdout lines until one matches ``pattern``; fail at ``deadline``."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} in time\n{self.report()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"dev exited before {pattern!r}\n{self.report()}")
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def drain(self) -> None:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self.seen.append(line)

    def report(self) -> str:
        return f"--- stdout\n{''.join(self.seen)}--- stderr (end)\n{self.stderr()}"


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    env = dev_env(tmp_path / "state")
    stderr_path = tmp_path / "dev.stderr"
    with stderr_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "starter.py", "dev"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    running = Dev(proc, lines, stderr_path, [])
    try:
        yield running
    finally:
        if proc.poll() is None:  # a failed test: still stop everything it started
            kids = descendants(proc.pid)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for pid in still_alive(kids):
                os.kill(pid, signal.SIGKILL)


# ---- tests ---------------------------------------------------------------------------------


def test_dev_runs_everything_and_ctrl_c_stops_it(
    dev: Dev, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    up = dev.until(r"synchub dev stack is up in ([\d.]+) s", began + 60)
    banner_wall = time.monotonic() - began
    ui_url = dev.until(r"Temporal Web UI\s+(http://\S+)", began + 60).group(1)
    codec_url = dev.until(r"codec server\s+(http://\S+)", began + 60).group(1)
    temporal = dev.until(r"Temporal frontend\s+(\S+)", began + 60).group(1)
    kafka, topics = dev.until(r"Kafka \(tansu\)\s+(\S+)\s+topics: (.+)$", began + 60).groups()
    shifts = int(dev.until(r"WIW simulator\s+\S+\s+\((\d+) shifts\)", began + 60).group(1))
    employees = int(dev.until(r"Advoware sim\s+\S+\s+\((\d+) employees\)", began + 60).group(1))
    schedules = dev.until(r"schedules\s+(.+?)\s+\(overlap SKIP\)", began + 60).group(1)
    registered = [d.schedule_id for d in schedule_definitions(Settings(), list(REGISTRY))]
    assert schedules.split(", ") == registered  # every registered source's, in registry order
    assert registered[:5] == [
        "synchub-wiw",
        "synchub-advoware",
        "synchub-temu-orders",
        "synchub-temu-inventory-quick",
        "synchub-temu-inventory-full",
    ]
    first, adv_first, temu_first = dev.until(
        r"first runs\s+([^,\s]+), ([^,\s]+), ([^,\s]+)", began + 60
    ).groups()
    assert first.startswith("syncall/wiw/") and adv_first.startswith("syncall/advoware/")
    assert temu_first.startswith("syncall/temu-orders/")
    dev.until(r"stop everything:\s+Ctrl-C", began + 60)
    with capsys.disabled():
        print(f"\n[dev start-up: banner says {up.group(1)} s, {banner_wall:.1f} s from spawn]")

    # the Web UI answers
    with urllib.request.urlopen(ui_url, timeout=10) as resp:
        assert resp.status == 200
    # and decrypts history through the dev stack's codec server
    with urllib.request.urlopen(f"{ui_url}/api/v1/settings", timeout=10) as resp:
        assert json.loads(resp.read())["Codec"]["Endpoint"] == codec_url

    # the first run's messages arrive on wiw.shifts
    assert "wiw.shifts" in topics.split(", ")
    reader = TopicReader(kafka, "wiw.shifts")
    try:
        msgs = reader.read(idle=3.0, timeout=30.0, expect=shifts)
    finally:
        reader.close()
    assert len(msgs) == shifts == 200, dev.report()
    assert len({m.key for m in msgs}) == shifts
    assert {m.headers["op"] for m in msgs} == {"upsert"}

    # and the Advoware run's appointments arrive on advoware.appointments, one employee each
    assert "advoware.appointments" in topics.split(", ")
    reader = TopicReader(kafka, "advoware.appointments")
    try:
        appointments = reader.read(idle=3.0, timeout=30.0)
    finally:
        reader.close()
    owners = {json.loads(m.value)["partition"] for m in appointments}
    assert appointments and 0 < len(owners) <= employees, dev.report()
    assert all(m.headers["source"] == "advoware" for m in appointments)

    # TEMU: the first orders run publishes orders, the first inventory run pushes stock
    for topic in ("temu.orders", "temu.inventory.changes"):
        assert topic in topics.split(", "), topics
        reader = TopicReader(kafka, topic)
        try:
            got = reader.read(idle=3.0, timeout=45.0, expect=1)
        finally:
            reader.close()
        assert got, f"nothing on {topic}\n{dev.report()}"

    # the run is found by its search attribute, with the CLI the banner suggests
    listed = ""
    for _ in range(20):
        cli = subprocess.run(
            [
                str(TEMPORAL_CLI),
                "workflow",
                "list",
                "--address",
                temporal,
                "--query",
                "SynchubSource='wiw'",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert cli.returncode == 0, cli.stderr
        listed = cli.stdout
        if first in listed:
            break
        time.sleep(0.25)  # visibility is updated asynchronously
    assert first in listed, listed

    # Ctrl-C stops every process it started and exits 0
    kids = descendants(dev.proc.pid)
    names = {name for name, _ in kids.values()}
    assert any("temporal" in n for n in names), kids
    assert any("tansu" in n for n in names), kids
    assert any("valkey" in n for n in names), kids
    stop_began = time.monotonic()
    dev.proc.send_signal(signal.SIGINT)
    code = dev.proc.wait(30)
    stop_seconds = time.monotonic() - stop_began
    with capsys.disabled():
        print(f"[dev stop after Ctrl-C: {stop_seconds:.1f} s]")
    dev.until(r"^stopped\.$", time.monotonic() + 5)
    dev.drain()
    assert code == 0, dev.report()
    assert "Traceback" not in dev.stderr(), dev.report()
    deadline = time.monotonic() + 2.0  # SIGKILLed stragglers take a moment to disappear
    while still_alive(kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert still_alive(kids) == {}, kids


def test_dev_port_in_use_fails_fast_naming_the_setting(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    env = dev_env(state_dir)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", int(env["SYNCHUB_KAFKA_PORT"])))
        taken.listen()
        began = time.monotonic()
        ran = subprocess.run(
            [sys.executable, "starter.py", "dev"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        seconds = time.monotonic() - began
    assert ran.returncode != 0, ran
    assert "SYNCHUB_KAFKA_PORT" in ran.stderr and env["SYNCHUB_KAFKA_PORT"] in ran.stderr, ran
    assert "Traceback" not in ran.stderr, ran.stderr
    assert seconds < 15, seconds
    # nothing was launched (logs are created only when a service starts), nothing is left
    assert not (state_dir / "logs").exists()
    assert processes_mentioning(str(state_dir)) == []
    for setting in PORT_SETTINGS:
        assert processes_mentioning(f"--port {env[setting]}") == []
