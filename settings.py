"""One typed settings tree for the worker, the starter and the dev stack.

Environment names stay compatible with the systems synchub replaces (slot_sync's
``SYNC_DAYS_AHEAD``, ``KAFKA_BROKERS``, ``REDIS_HOST`` ... and the Advoware step's
``CALENDAR_SYNC_DEBUG_KUERZEL``), so an operator can point the old environment at
synchub. Only the entry points (``worker.py``, ``starter.py``) build ``Settings``;
everything else receives the part it needs. Tests override by keyword arguments.

Each section lives next to what it configures: a source's in ``connectors/<source>/settings.py``,
the engine's connections in ``infra/*_settings.py``; this module keeps the sections of the
engine as a whole and collects them all into ``Settings``, whose fields are the tree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import AliasChoices, Field, SerializeAsAny, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from pydantic_settings import SettingsError as _UnparsableSetting

from connectors.advoware.settings import AdvowareSettings
from connectors.temu.settings import TEMU_HOSTS, TemuSettings, TemuShop
from connectors.wiw.settings import WiwSettings
from infra.kafka_settings import KafkaSettings, OutputSettings
from infra.redis_settings import RedisSettings
from infra.temporal_settings import TemporalSettings
from models.settings_section import Section, env

if TYPE_CHECKING:
    from connectors.base import ConnectorSpec

S = TypeVar("S", bound=Section)

__all__ = [
    "TEMU_HOSTS",
    "AdvowareSettings",
    "DevStackSettings",
    "KafkaSettings",
    "OutputSettings",
    "RedisSettings",
    "Settings",
    "SettingsError",
    "SyncSettings",
    "TelemetrySettings",
    "TemporalSettings",
    "TemuSettings",
    "TemuShop",
    "WiwSettings",
    "declared_sections",
    "load_settings",
    "redact_url",
]


class SyncSettings(Section):
    """How much to sync and how often (slot_sync's runner settings)."""

    days_ahead: int = Field(
        default=1, ge=0, le=366, validation_alias=env("days_ahead", "SYNC_DAYS_AHEAD")
    )
    """Days after today in the When I Work window."""
    days_prior: int = Field(
        default=0, ge=0, le=366, validation_alias=env("days_prior", "SYNC_DAYS_PRIOR")
    )
    """Days before today in the When I Work window."""
    interval_seconds: int = Field(
        default=60, ge=1, validation_alias=env("interval_seconds", "SYNC_SLEEP_PERIOD_SECONDS")
    )
    """Schedule interval of the WIW sync (slot_sync slept this long between runs)."""
    timezone: str = Field(default="UTC", validation_alias=env("timezone", "SYNC_TIMEZONE"))
    """Timezone whose calendar days make the WIW day partitions."""
    max_concurrent: int = Field(
        default=20, ge=1, le=1000, validation_alias=env("max_concurrent", "SYNC_MAX_CONCURRENT")
    )
    """Default number of partitions synced at once by a sync-all run."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value


class DevStackSettings(Section):
    """Ports and state folder of the embedded default (``starter.py dev``)."""

    state_dir: Path = Field(
        default=Path(".synchub"), validation_alias=env("state_dir", "SYNCHUB_STATE_DIR")
    )
    """Folder for the Temporal SQLite history and logs; survives restarts."""
    host: str = Field(default="127.0.0.1", validation_alias=env("host", "SYNCHUB_DEV_HOST"))
    """Loopback address every embedded service binds to."""
    temporal_port: int = Field(
        default=7233, validation_alias=env("temporal_port", "SYNCHUB_TEMPORAL_PORT")
    )
    """Temporal frontend port."""
    ui_port: int = Field(default=8233, validation_alias=env("ui_port", "SYNCHUB_UI_PORT"))
    """Temporal Web UI port."""
    kafka_port: int = Field(default=9092, validation_alias=env("kafka_port", "SYNCHUB_KAFKA_PORT"))
    """Kafka-protocol broker (tansu) port."""
    redis_port: int = Field(default=6379, validation_alias=env("redis_port", "SYNCHUB_REDIS_PORT"))
    """Redis-protocol server (valkey) port."""
    wiw_port: int = Field(default=8081, validation_alias=env("wiw_port", "SYNCHUB_WIW_SIM_PORT"))
    """When I Work simulator port."""
    advoware_port: int = Field(
        default=8082, validation_alias=env("advoware_port", "SYNCHUB_ADVOWARE_SIM_PORT")
    )
    """Advoware simulator port."""
    advoware_employees: int = Field(
        default=12,
        ge=0,
        validation_alias=env("advoware_employees", "SYNCHUB_ADVOWARE_SIM_EMPLOYEES"),
    )
    """Employees the Advoware simulator generates at start."""
    advoware_appointments: int = Field(
        default=40,
        ge=0,
        validation_alias=env("advoware_appointments", "SYNCHUB_ADVOWARE_SIM_APPOINTMENTS"),
    )
    """Appointments per employee the Advoware simulator generates at start."""
    temu_port: int = Field(default=8083, validation_alias=env("temu_port", "SYNCHUB_TEMU_SIM_PORT"))
    """TEMU simulator port."""
    temu_orders: int = Field(
        default=300, ge=0, validation_alias=env("temu_orders", "SYNCHUB_TEMU_SIM_ORDERS")
    )
    """Orders the TEMU simulator generates at start (last three days)."""
    wiw_shifts: int = Field(
        default=200, ge=0, validation_alias=env("wiw_shifts", "SYNCHUB_WIW_SIM_SHIFTS")
    )
    """Shifts the simulator generates at start."""
    codec_port: int = Field(default=8234, validation_alias=env("codec_port", "SYNCHUB_CODEC_PORT"))
    """Codec server port; the Web UI decrypts payloads through it."""


class TelemetrySettings(Section):
    """Traces and metrics (``infra.telemetry``, ``infra.metrics``)."""

    tracing: bool = Field(default=True, validation_alias=env("tracing", "SYNCHUB_TRACING"))
    """Record spans (Temporal, upstream HTTP, Redis, Kafka publish); ``false`` turns them off."""
    traces_file: Path | None = Field(
        default=None, validation_alias=env("traces_file", "SYNCHUB_TRACES_FILE")
    )
    """Where spans are appended as JSON lines when no OTLP endpoint is set (``trace``);
    default ``traces.jsonl`` in the state folder (SYNCHUB_STATE_DIR)."""
    otlp_endpoint: str | None = Field(
        default=None, validation_alias=env("otlp_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    """OTLP/HTTP collector base URL (e.g. ``http://collector:4318``); spans go there instead."""
    metrics_address: str = Field(
        default="127.0.0.1:9464",
        validation_alias=env("metrics_address", "SYNCHUB_METRICS_ADDRESS"),
    )
    """``host:port`` of the worker's Prometheus endpoint (``/metrics``); empty turns it off."""

    @field_validator("metrics_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if value and (not sep or not host or not port.isdigit() or int(port) > 65535):
            raise ValueError("expected host:port, e.g. 127.0.0.1:9464 (empty turns it off)")
        return value


class Settings(Section):
    """The whole tree. Build it only in entry points; pass sections down."""

    temporal: TemporalSettings = Field(default_factory=lambda: TemporalSettings())
    kafka: KafkaSettings = Field(default_factory=lambda: KafkaSettings())
    redis: RedisSettings = Field(default_factory=lambda: RedisSettings())
    sync: SyncSettings = Field(default_factory=lambda: SyncSettings())
    wiw: WiwSettings = Field(default_factory=lambda: WiwSettings())
    advoware: AdvowareSettings = Field(default_factory=lambda: AdvowareSettings())
    temu: TemuSettings = Field(default_factory=lambda: TemuSettings())
    dev: DevStackSettings = Field(default_factory=lambda: DevStackSettings())
    output: OutputSettings = Field(default_factory=lambda: OutputSettings())
    telemetry: TelemetrySettings = Field(default_factory=lambda: TelemetrySettings())
    sections: dict[str, SerializeAsAny[Section]] = Field(
        default_factory=lambda: {name: kind() for name, kind in declared_sections().items()}
    )
    """Sections that sources declare in their registry entry (``ConnectorSpec.settings``)
    and that have no field above, by class name; read them with ``section()``. A new source
    brings its section this way, so it adds no field here."""

    def section(self, kind: type[S]) -> S:
        """The section of type ``kind``: a field above, a collected one, else from the env.

        A section nobody declared (a simulator's dev-stack ports) is read from the
        environment on each call, as every section is when the tree is built.
        """
        for value in (*self.__dict__.values(), *self.sections.values()):
            if type(value) is kind:
                return value
        return kind()

    def with_sections(self, *sections: Section) -> Settings:
        """A copy with these sections replacing those of the same type (field or collected)."""
        fields: dict[str, Any] = {}
        collected = dict(self.sections)
        for section in sections:
            name = next(
                (n for n, v in self.__dict__.items() if type(v) is type(section)),
                None,
            )
            if name is not None:
                fields[name] = section
            else:
                collected[type(section).__name__] = section
        return self.model_copy(update={**fields, "sections": collected})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keywords only: sections read the environment themselves.

        Reading it here too would parse variables such as ``KAFKA`` or ``DEV`` as JSON for
        whole sections.
        """
        return (init_settings,)


class SettingsError(Exception):
    """Settings are invalid; the message names each environment variable to fix."""


_SECTIONS: dict[str, type[Section]] = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, Section)
}
"""Every section of the tree, by field name: each reads its own environment variables."""


def declared_sections(
    specs: Mapping[str, ConnectorSpec] | None = None,
) -> dict[str, type[Section]]:
    """Settings sections the registry's sources declare that ``Settings`` has no field for.

    Keyed by class name (each once, also when several sources share it), in registry order.
    ``specs`` defaults to ``connectors.REGISTRY``.
    """
    if specs is None:
        from connectors import REGISTRY

        specs = REGISTRY
    typed = set(_SECTIONS.values())
    found: dict[str, type[Section]] = {}
    for spec in specs.values():
        kind = spec.settings
        if kind is not None and kind not in typed:
            found.setdefault(kind.__name__, kind)
    return found


def _env_name(section: type[Section], field: str) -> str:
    alias = section.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str) and c.isupper()]
        if names:
            return names[0]
    return field


def redact_url(text: str) -> str:
    """Hide the password of URLs such as ``redis://user:password@host``."""
    return re.sub(r"(://[^/@\s:]*:)[^/@\s]*@", r"\1***@", text)


def _unparsable(section: type[Section], exc: _UnparsableSetting) -> str:
    """A JSON setting (``TEMU_SHOPS``) that does not parse, named by its variable.

    pydantic-settings decodes JSON before validation and says only "error parsing value for
    field"; the value itself is never echoed (it holds app secrets and tokens).
    """
    match = re.search(r'field "(\w+)"', str(exc))
    field = match.group(1) if match else ""
    env = _env_name(section, field) if field in section.model_fields else field or section.__name__
    cause = exc.__cause__
    why = f" ({cause})" if isinstance(cause, json.JSONDecodeError) else ""
    return f"{env}: not valid JSON{why}"


def _problems(section: type[Section], exc: ValidationError) -> list[str]:
    """One line per invalid variable of ``section``, named by its environment variable."""
    problems = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        env = _env_name(section, field) if field in section.model_fields else field
        where = env + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"][1:])
        value = err.get("input")
        secret = any(w in where.upper() for w in ("KEY", "TOKEN", "PASSWORD", "SECRET"))
        # only scalars are echoed: a list or object (TEMU_SHOPS) may hold secrets
        scalar = isinstance(value, str | int | float | bool)
        shown = f" (got {redact_url(repr(value))})" if scalar and not secret else ""
        problems.append(f"{where}: {err['msg']}{shown}")
    return problems


def load_settings(
    *, specs: Mapping[str, ConnectorSpec] | None = None, **overrides: Any
) -> Settings:
    """Build the settings tree from the environment, failing with the variables to fix.

    The fields of ``Settings`` and every section a registered source declares
    (``ConnectorSpec.settings``; ``specs`` defaults to the registry) are read; keyword
    overrides replace fields by name.

    Raises:
        SettingsError: one line per invalid variable, naming it and what is wrong.

    """
    sections: dict[str, Any] = {}
    collected: dict[str, Section] = {}
    problems: list[str] = []
    wanted = [(name, section, sections) for name, section in _SECTIONS.items()]
    wanted += [(name, kind, collected) for name, kind in declared_sections(specs).items()]
    for name, section, into in wanted:
        if into is sections and name in overrides:
            sections[name] = overrides[name]
            continue
        try:
            into[name] = section()
        except _UnparsableSetting as exc:
            problems.append(_unparsable(section, exc))
        except ValidationError as exc:
            problems += _problems(section, exc)
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))
    return Settings(**sections, sections=collected)
