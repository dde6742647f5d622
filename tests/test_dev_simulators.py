"""The dev stack finds every simulator through the registry: one line adds a source to it."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from connectors import REGISTRY, Connector, ConnectorSpec
from devstack.run import build_stack, local_settings
from devstack.simulator import DevSimulator, Simulated, SimulatorHookError, registry_simulators
from models.errors import NotConfiguredError
from settings import DevStackSettings, Settings, load_settings
from simulators.server import PortInUseError, ThreadedServer, free_port

DEMO_SIM = '''
"""A simulator package of a made-up source, as a new source would add one."""


class _Seeded:
    app = None

    def settings_update(self, settings, url):
        return {}

    def prepare(self, context):
        pass

    def churn(self, context):
        pass

    def summary(self):
        return "(demo)"


class _Dev:
    title = "demo simulator"
    port_setting = "SYNCHUB_DEMO_SIM_PORT"
    first_runs = {"demo": {}}

    def __init__(self, port):
        self._port = port

    def port(self, settings):
        return self._port

    def topics(self, settings):
        return ["demo.things", settings.kafka.wiw_topic]

    def seed(self, settings):
        return _Seeded()


DEV = _Dev(__PORT__)
'''


class _NoParams(BaseModel):
    pass


def _never_built(settings: Settings) -> Connector:
    raise NotConfiguredError("not built in this test", setting="DEMO")


def _register_demo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, package: str, port: int
) -> None:
    """A made-up source whose simulator package lives in ``tmp_path``; undone after the test."""
    folder = tmp_path / package
    folder.mkdir()
    (folder / "__init__.py").write_text(textwrap.dedent(DEMO_SIM).replace("__PORT__", str(port)))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ConnectorSpec(
        source="demo",
        build=_never_built,
        params=_NoParams,
        simulator=package,
    )
    monkeypatch.setitem(REGISTRY, "demo", spec)


def _free_dev(tmp_path: Path) -> DevStackSettings:
    ports = {free_port() for _ in range(12)}
    p = iter(sorted(ports))
    return DevStackSettings(
        state_dir=tmp_path / "state",
        temporal_port=next(p),
        ui_port=next(p),
        kafka_port=next(p),
        redis_port=next(p),
        wiw_port=next(p),
        advoware_port=next(p),
        temu_port=next(p),
        codec_port=next(p),
    )


def test_every_registered_simulator_has_dev_hooks() -> None:
    packages = {spec.simulator for spec in REGISTRY.values()}
    assert "" not in packages, "every registered source names its simulator package"
    hooks = registry_simulators(REGISTRY)
    assert set(hooks) == packages
    assert {"simulators.wiw", "simulators.advoware", "simulators.temu"} <= packages
    for package, dev in hooks.items():
        assert isinstance(dev, DevSimulator), package
        simulated = {s for s, spec in REGISTRY.items() if spec.simulator == package}
        assert set(dev.first_runs) <= simulated, (package, dev.first_runs)


def test_a_new_source_joins_the_dev_stack_by_its_registry_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        _register_demo(monkeypatch, tmp_path, "demo_sim_a", port)
        stack = build_stack(load_settings(dev=_free_dev(tmp_path)))
        assert "demo.things" in stack.topics
        assert stack.topics.count("wiw.shifts") == 1  # a topic two simulators name is made once
        with pytest.raises(PortInUseError) as failure:
            stack.start()
    assert "SYNCHUB_DEMO_SIM_PORT" in str(failure.value) and str(port) in str(failure.value)
    assert stack.processes == {}


def test_a_registry_line_naming_no_simulator_hooks_says_what_to_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "demo_sim_b").mkdir()
    (tmp_path / "demo_sim_b" / "__init__.py").write_text('"""No DEV here."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ConnectorSpec(
        source="demo", build=_never_built, params=_NoParams, simulator="demo_sim_b"
    )
    monkeypatch.setitem(REGISTRY, "demo", spec)
    with pytest.raises(SimulatorHookError, match=r"'demo'.*'demo_sim_b' has no DEV"):
        build_stack(load_settings(dev=_free_dev(tmp_path)))
    monkeypatch.setitem(
        REGISTRY,
        "demo",
        ConnectorSpec(
            source="demo",
            build=_never_built,
            params=_NoParams,
            simulator="no_such_sim_pkg",
        ),
    )
    with pytest.raises(SimulatorHookError, match=r"'demo': simulator='no_such_sim_pkg'"):
        build_stack(load_settings(dev=_free_dev(tmp_path)))


def test_the_dev_settings_point_each_source_at_its_simulator(tmp_path: Path) -> None:
    settings = load_settings(dev=_free_dev(tmp_path))
    stack = build_stack(settings)
    hooks = registry_simulators(REGISTRY)
    sims = [
        Simulated(h, h.seed(settings), ThreadedServer(None, "127.0.0.1", h.port(settings)))
        for h in hooks.values()
    ]
    local = local_settings(settings, stack, settings.temporal, sims)
    url = {package: sim.server.url for package, sim in zip(hooks, sims, strict=True)}
    wiw, adv, temu = (url[f"simulators.{s}"] for s in ("wiw", "advoware", "temu"))
    assert local.wiw.api_url == wiw and local.wiw.configured
    assert local.advoware.api_url == f"{adv}/" and local.advoware.security_url == f"{adv}/"
    assert [s.api_url for s in local.temu.shops] == [f"{temu}/openapi/router"]
    assert local.kafka.brokers == stack.kafka_brokers and local.redis.url == stack.redis_url
    assert sims[list(hooks).index("simulators.wiw")].seeded.summary() == (
        f"({settings.dev.wiw_shifts} shifts)"
    )
