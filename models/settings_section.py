"""The base of every settings section: documented upper-case environment names only.

Sections live next to what they configure (``connectors/<source>/settings.py``,
``infra/*_settings.py``); ``settings.Settings`` collects them into one tree.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


def env(*names: str) -> Any:
    """The given environment names (upper case); keyword overrides use the field name.

    Field names are dropped from the aliases: as environment names they would read generic
    variables such as ``HOST``, ``URL``, ``EMAIL`` or ``TOKEN`` from the operator's shell.
    """
    return AliasChoices(*(n for n in names if n.isupper()))


class _DocumentedEnv(EnvSettingsSource):
    """Environment source that reads only the documented upper-case names.

    ``populate_by_name`` (needed for keyword overrides) would otherwise make pydantic-settings
    also look up each field's bare name (``host``, ``token``, ``namespace``) case-insensitively.
    """

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in super().__call__().items() if k.isupper()}


class Section(BaseSettings):
    """A settings section: keyword overrides by field name, environment by documented name."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword overrides first, then the documented environment names."""
        return init_settings, _DocumentedEnv(settings_cls)
