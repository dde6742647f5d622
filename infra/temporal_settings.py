"""Where the Temporal frontend is, how to reach it, and the payload codec's keys."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, FilePath, SecretStr, ValidationInfo, field_validator

from models.settings_section import Section, env


class TemporalSettings(Section):
    """Where the Temporal frontend is and which task queue synchub's worker polls."""

    address: str = Field(
        default="127.0.0.1:7233", validation_alias=env("address", "TEMPORAL_ADDRESS")
    )
    """host:port of the Temporal frontend (dev server, cluster or Temporal Cloud)."""
    namespace: str = Field(
        default="default", validation_alias=env("namespace", "TEMPORAL_NAMESPACE")
    )
    """Temporal namespace the workflows and schedules live in."""
    task_queue: str = Field(
        default="synchub", validation_alias=env("task_queue", "TEMPORAL_TASK_QUEUE")
    )
    """Task queue shared by the worker and every workflow start."""
    api_key: SecretStr | None = Field(
        default=None, validation_alias=env("api_key", "TEMPORAL_API_KEY")
    )
    """API key for Temporal Cloud; implies TLS."""
    tls: bool = Field(default=False, validation_alias=env("tls", "TEMPORAL_TLS"))
    """Connect with TLS (set for Temporal Cloud or a TLS-terminated cluster)."""
    graceful_shutdown_seconds: float = Field(
        default=45.0,
        ge=0,
        validation_alias=env("graceful_shutdown_seconds", "WORKER_GRACEFUL_SHUTDOWN_SECONDS"),
    )
    """After SIGTERM, running pages get this long to finish and commit before they are
    cancelled; keep it below the pod's ``terminationGracePeriodSeconds`` (60 s)."""
    codec_keys: SecretStr | None = Field(
        default=None, validation_alias=env("codec_keys", "SYNCHUB_CODEC_KEYS")
    )
    """Comma list ``id:base64key`` of 32-byte AES keys, e.g. ``k2026:...,k2025:...``; every
    key whose payloads may still be read stays listed. Unset: payloads are plaintext (the
    embedded default generates one under its state folder)."""
    codec_active_key: str | None = Field(
        default=None, validation_alias=env("codec_active_key", "SYNCHUB_CODEC_ACTIVE_KEY")
    )
    """Id of the key new payloads are encrypted with; may be omitted when only one key is set."""

    @field_validator("codec_keys")
    @classmethod
    def _parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from infra.codec import parse_keys

            parse_keys(value.get_secret_value())
        return value

    @field_validator("codec_active_key")
    @classmethod
    def _known(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "codec_keys" not in info.data:
            return value  # the keys are invalid: that error names SYNCHUB_CODEC_KEYS
        keys = info.data["codec_keys"]
        if value is None:
            if keys is not None and len(cls._ids(keys)) > 1:
                raise ValueError("several keys in SYNCHUB_CODEC_KEYS: name the active one")
            return value
        if keys is None:
            raise ValueError("set SYNCHUB_CODEC_KEYS too: the active key must be one of them")
        if value not in cls._ids(keys):
            raise ValueError(f"{value!r} is not a key id in SYNCHUB_CODEC_KEYS")
        return value

    @staticmethod
    def _ids(keys: SecretStr) -> list[str]:
        return [e.split(":", 1)[0].strip() for e in keys.get_secret_value().split(",") if e.strip()]

    def codec(self) -> tuple[dict[str, bytes], str | None]:
        """Key id → key bytes, and the active id (the only key when just one is set)."""
        if self.codec_keys is None:
            return {}, None
        from infra.codec import parse_keys

        keys = parse_keys(self.codec_keys.get_secret_value())
        return keys, self.codec_active_key or next(iter(keys))

    tls_ca_file: FilePath | None = Field(
        default=None, validation_alias=env("tls_ca_file", "TEMPORAL_TLS_CA_FILE")
    )
    """CA bundle (PEM) that signed the frontend's certificate; implies TLS."""
    tls_cert_file: FilePath | None = Field(
        default=None, validation_alias=env("tls_cert_file", "TEMPORAL_TLS_CERT_FILE")
    )
    """Client certificate (PEM) for mTLS, e.g. Temporal Cloud's; needs TEMPORAL_TLS_KEY_FILE."""
    tls_key_file: FilePath | None = Field(
        default=None,
        validation_alias=env("tls_key_file", "TEMPORAL_TLS_KEY_FILE"),
        validate_default=True,
    )
    """Private key (PEM) of the client certificate."""
    tls_server_name: str | None = Field(
        default=None, validation_alias=env("tls_server_name", "TEMPORAL_TLS_SERVER_NAME")
    )
    """Server name to verify instead of the address's host (SNI override)."""

    @field_validator("tls_key_file")
    @classmethod
    def _pair(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if (value is None) != (info.data.get("tls_cert_file") is None) and (
            "tls_cert_file" in info.data
        ):
            raise ValueError("TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together")
        return value
