"""``starter.py dev``: every port clash listed at once; the banner's commands work as printed."""

from __future__ import annotations

import shlex
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from devstack.banner import ROOT, dev_commands
from devstack.run import build_stack
from devstack.services import DevStack
from settings import DevStackSettings, load_settings
from simulators.server import PortInUseError, free_port


@pytest.fixture
def taken() -> Iterator[list[int]]:
    """Three loopback ports other programs listen on."""
    with ExitStack() as stack:
        ports = []
        for _ in range(3):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            ports.append(int(sock.getsockname()[1]))
        yield ports


def test_every_taken_port_of_the_stack_is_listed(tmp_path: Path, taken: list[int]) -> None:
    dev = DevStack(
        state_dir=tmp_path / "state",
        temporal_port=taken[0],
        ui_port=0,
        kafka_port=0,
        redis_port=taken[1],
        extra_ports=[(taken[2], "the When I Work simulator", "SYNCHUB_WIW_SIM_PORT")],
    )
    with pytest.raises(PortInUseError) as failure:
        dev.start()
    text = str(failure.value)
    for port, setting in zip(
        taken, ("SYNCHUB_TEMPORAL_PORT", "SYNCHUB_REDIS_PORT", "SYNCHUB_WIW_SIM_PORT"), strict=True
    ):
        assert str(port) in text and setting in text, text
    assert "SYNCHUB_KAFKA_PORT" not in text and "SYNCHUB_UI_PORT" not in text, text
    assert dev.processes == {} and not (tmp_path / "state").exists()


def test_dev_command_lists_simulator_and_service_clashes_together(
    tmp_path: Path, taken: list[int]
) -> None:
    dev = DevStackSettings(
        state_dir=tmp_path / "state",
        temporal_port=free_port(),
        ui_port=free_port(),
        kafka_port=taken[0],
        redis_port=free_port(),
        wiw_port=taken[1],
        advoware_port=free_port(),
        temu_port=taken[2],
    )
    stack = build_stack(load_settings(dev=dev))
    with pytest.raises(PortInUseError) as failure:
        stack.start()
    text = str(failure.value)
    for setting in ("SYNCHUB_KAFKA_PORT", "SYNCHUB_WIW_SIM_PORT", "SYNCHUB_TEMU_SIM_PORT"):
        assert setting in text, text
    assert "SYNCHUB_ADVOWARE_SIM_PORT" not in text, text


def test_banner_commands_run_as_printed(temporal_address: str, tmp_path: Path) -> None:
    # Not through a shell's PATH: the commands name the binaries they need.
    commands = dict(dev_commands("wiw", "wiw.shifts", temporal_address, "syncall/wiw/no-such-run"))
    assert set(commands) == {"watch messages", "progress", "trace of a run", "find runs"}
    find = subprocess.run(
        shlex.split(commands["find runs"]),
        cwd=ROOT,
        env={"PATH": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert find.returncode == 0, find.stderr
    status = subprocess.run(
        shlex.split(commands["progress"]),
        cwd=ROOT,
        env={"PATH": "/nonexistent", "TEMPORAL_ADDRESS": temporal_address},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # it ran and reached Temporal, which does not know the id
    assert status.returncode == 1 and "Temporal said" in status.stderr, status.stderr
    assert commands["watch messages"].endswith("starter.py watch wiw.shifts")
    trace = subprocess.run(
        shlex.split(commands["trace of a run"]),
        cwd=ROOT,
        env={"PATH": "/nonexistent", "SYNCHUB_STATE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # it ran and looked in the traces file, which has no span of that run
    assert trace.returncode == 1 and "syncall/wiw/no-such-run" in trace.stderr, trace.stderr
