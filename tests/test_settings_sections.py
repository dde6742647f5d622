"""A source's settings section comes with its registry entry, not with a field of ``Settings``.

``ConnectorSpec.settings`` names the section; ``load_settings`` reads it from the environment
with the same error lines as every other section, and code reads it with
``settings.section(kind)``. Reading the environment is the behaviour under test, so these
tests set variables with ``monkeypatch`` (elsewhere settings are built from keywords).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, SecretStr

from connectors import REGISTRY, ConnectorSpec
from models.errors import NotConfiguredError
from models.settings_section import Section, env
from settings import Settings, SettingsError, WiwSettings, declared_sections, load_settings


class ExampleSettings(Section):
    """A section no field of ``Settings`` knows."""

    api_url: str = Field(default="https://example.invalid", validation_alias=env("EXAMPLE_API_URL"))
    secret: SecretStr | None = Field(default=None, validation_alias=env("EXAMPLE_SECRET"))
    interval_minutes: int = Field(default=5, ge=1, validation_alias=env("EXAMPLE_INTERVAL_MINUTES"))


def _build(settings: Settings) -> Any:
    section = settings.section(ExampleSettings)
    if section.secret is None:
        raise NotConfiguredError("example is not configured: set EXAMPLE_SECRET")
    return section


EXAMPLE = ConnectorSpec(source="example", build=_build, params=BaseModel, settings=ExampleSettings)
SHARED = ConnectorSpec(source="example-2", build=_build, params=BaseModel, settings=ExampleSettings)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EXAMPLE_API_URL", "EXAMPLE_SECRET", "EXAMPLE_INTERVAL_MINUTES"):
        monkeypatch.delenv(name, raising=False)


def test_a_declared_section_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_API_URL", "http://sim:8085/v2")
    monkeypatch.setenv("EXAMPLE_SECRET", "s3cr3t-example")
    specs = {"example": EXAMPLE, "example-2": SHARED}
    assert list(declared_sections(specs)) == ["ExampleSettings"]  # shared: collected once
    settings = load_settings(specs=specs)
    section = settings.section(ExampleSettings)
    assert section.api_url == "http://sim:8085/v2"
    assert EXAMPLE.build(settings) is section


def test_a_bad_value_names_the_variable_and_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_INTERVAL_MINUTES", "0")
    monkeypatch.setenv("EXAMPLE_SECRET", "s3cr3t-example")
    with pytest.raises(SettingsError) as caught:
        load_settings(specs={"example": EXAMPLE})
    text = str(caught.value)
    assert "EXAMPLE_INTERVAL_MINUTES" in text and "s3cr3t" not in text
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_missing_required_settings_leave_the_source_not_configured() -> None:
    settings = load_settings(specs={"example": EXAMPLE})
    with pytest.raises(NotConfiguredError, match="EXAMPLE_SECRET"):
        EXAMPLE.build(settings)


def test_with_sections_replaces_fields_and_collected_sections() -> None:
    base = load_settings(specs={"example": EXAMPLE})
    wiw = WiwSettings(api_url="http://wiw.sim")
    example = ExampleSettings(api_url="http://kl.sim", secret=SecretStr("x"))
    changed = base.with_sections(wiw, example)
    assert changed.wiw is wiw and changed.section(WiwSettings) is wiw
    assert changed.section(ExampleSettings) is example
    assert base.section(ExampleSettings).api_url == "https://example.invalid"  # a copy


def test_an_undeclared_section_is_read_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    """A section nobody declares (a simulator's dev port) still has typed access."""
    monkeypatch.setenv("EXAMPLE_API_URL", "http://late")
    assert Settings().section(ExampleSettings).api_url == "http://late"


def test_every_registered_section_is_collected() -> None:
    settings = load_settings()
    for spec in REGISTRY.values():
        if spec.settings is not None:
            assert type(settings.section(spec.settings)) is spec.settings, spec.source


def test_every_declared_variable_is_documented_in_its_connector_folder() -> None:
    """The main README's settings table is not edited per source: each documents its own."""
    root = Path(__file__).parents[1]
    for kind in declared_sections().values():
        folder = root.joinpath(*kind.__module__.split(".")[:-1])
        readme = folder / "README.md"
        assert readme.exists(), f"{kind.__name__}: write {readme.relative_to(root)}"
        text = readme.read_text(encoding="utf-8")
        for name, field in kind.model_fields.items():
            alias = field.validation_alias
            names = [c for c in getattr(alias, "choices", []) if isinstance(c, str)]
            assert any(n in text for n in names), f"{names or name} not in {readme}"
