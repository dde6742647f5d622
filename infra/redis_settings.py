"""Where the change store (Redis) is and how long its state lives."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, FilePath, SecretStr, ValidationInfo, field_validator

from models.settings_section import Section, env


class RedisSettings(Section):
    """The change store (slot_sync's ``REDIS_HOST`` and ``EXPIRE_CACHE``)."""

    url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=env("url", "REDIS_HOST", "REDIS_URL")
    )
    """Redis URL, e.g. ``redis://localhost:6379/0``; a bare ``host:port`` is accepted."""
    expire_cache: int = Field(
        default=604_800, ge=60, validation_alias=env("expire_cache", "EXPIRE_CACHE")
    )
    """Seconds the fingerprints of a partition live after its last run (default one week)."""

    @field_validator("url")
    @classmethod
    def _with_scheme(cls, value: str) -> str:
        if "://" not in value:
            value = f"redis://{value}"
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    username: str | None = Field(default=None, validation_alias=env("username", "REDIS_USERNAME"))
    """ACL user (Redis 6+ / valkey); unset: the ``default`` user."""
    password: SecretStr | None = Field(
        default=None, validation_alias=env("password", "REDIS_PASSWORD")
    )
    """Password of the ACL user (or ``requirepass``); kept out of REDIS_URL and the logs."""
    ssl_ca_file: FilePath | None = Field(
        default=None, validation_alias=env("ssl_ca_file", "REDIS_SSL_CA_FILE")
    )
    """CA bundle (PEM) for ``rediss://``; default: the system's."""
    ssl_cert_file: FilePath | None = Field(
        default=None, validation_alias=env("ssl_cert_file", "REDIS_SSL_CERT_FILE")
    )
    """Client certificate (PEM) when the server requires mutual TLS."""
    ssl_key_file: FilePath | None = Field(
        default=None,
        validation_alias=env("ssl_key_file", "REDIS_SSL_KEY_FILE"),
        validate_default=True,
    )
    """Private key (PEM) of the client certificate."""

    @field_validator("ssl_key_file")
    @classmethod
    def _tls_needs_rediss(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        files = [info.data.get("ssl_ca_file"), info.data.get("ssl_cert_file"), value]
        url = info.data.get("url", "")
        if any(files) and url and not url.startswith("rediss://"):
            raise ValueError("REDIS_SSL_* files need a rediss:// URL in REDIS_HOST/REDIS_URL")
        return value
