"""Brokers, topics and security of the Kafka connection, and what synchub writes there."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, FilePath, SecretStr, ValidationInfo, field_validator

from models.settings_section import Section, env


class KafkaSettings(Section):
    """Broker addresses and topic names (slot_sync's ``KAFKA_BROKERS``/``KAFKA_TOPIC_NAME``)."""

    brokers: str = Field(default="127.0.0.1:9092", validation_alias=env("brokers", "KAFKA_BROKERS"))
    """Comma-separated bootstrap servers."""
    wiw_topic: str = Field(
        default="wiw.shifts",
        validation_alias=env("wiw_topic", "KAFKA_TOPIC_NAME", "KAFKA_WIW_TOPIC"),
    )
    """Topic for When I Work shifts (slot_sync published every shift to KAFKA_TOPIC_NAME)."""
    deadletter_topic: str = Field(
        default="synchub.deadletter",
        validation_alias=env("deadletter_topic", "KAFKA_DEADLETTER_TOPIC"),
    )
    """Malformed upstream records land here with the reason."""
    advoware_topic: str = Field(
        default="advoware.appointments",
        validation_alias=env("advoware_topic", "KAFKA_ADVOWARE_TOPIC"),
    )
    """Topic for Advoware calendar appointments."""
    topic_partitions: int = Field(
        default=4, ge=1, validation_alias=env("topic_partitions", "KAFKA_TOPIC_PARTITIONS")
    )
    """Partitions for topics synchub creates at start (existing topics are left alone)."""
    delivery_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=env("delivery_timeout_seconds", "KAFKA_DELIVERY_TIMEOUT_SECONDS"),
    )
    """How long a message may wait for the broker's acknowledgement (``message.timeout.ms``);
    bounds a publish against a dead broker; keep it below the graceful shutdown timeout."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        validation_alias=env("security_protocol", "KAFKA_SECURITY_PROTOCOL"),
    )
    """``PLAINTEXT``, ``SSL`` (TLS), ``SASL_PLAINTEXT`` or ``SASL_SSL`` (SASL over TLS)."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, validation_alias=env("sasl_mechanism", "KAFKA_SASL_MECHANISM")
    )
    """SASL mechanism for the ``SASL_*`` protocols."""
    sasl_username: str | None = Field(
        default=None, validation_alias=env("sasl_username", "KAFKA_SASL_USERNAME")
    )
    """SASL user."""
    sasl_password: SecretStr | None = Field(
        default=None, validation_alias=env("sasl_password", "KAFKA_SASL_PASSWORD")
    )
    """SASL password."""
    ssl_ca_file: FilePath | None = Field(
        default=None, validation_alias=env("ssl_ca_file", "KAFKA_SSL_CA_FILE")
    )
    """CA bundle (PEM) that signed the brokers' certificates; default: the system's."""
    ssl_cert_file: FilePath | None = Field(
        default=None, validation_alias=env("ssl_cert_file", "KAFKA_SSL_CERT_FILE")
    )
    """Client certificate (PEM) when the brokers require mutual TLS."""
    ssl_key_file: FilePath | None = Field(
        default=None, validation_alias=env("ssl_key_file", "KAFKA_SSL_KEY_FILE")
    )
    """Private key (PEM) of the client certificate."""
    ssl_key_password: SecretStr | None = Field(
        default=None,
        validation_alias=env("ssl_key_password", "KAFKA_SSL_KEY_PASSWORD"),
        validate_default=True,
    )
    """Password of an encrypted client key."""

    @field_validator("ssl_key_password")
    @classmethod
    def _consistent(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        d = info.data
        protocol = d.get("security_protocol", "PLAINTEXT")
        sasl = protocol.startswith("SASL_")
        if sasl and not (d.get("sasl_mechanism") and d.get("sasl_username")):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if sasl and d.get("sasl_password") is None and "sasl_password" in d:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_PASSWORD")
        if not sasl and d.get("sasl_mechanism"):
            raise ValueError(
                "KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL is "
                f"{protocol}: use SASL_SSL (or SASL_PLAINTEXT)"
            )
        tls_files = [d.get(f) for f in ("ssl_ca_file", "ssl_cert_file", "ssl_key_file")]
        if protocol in ("PLAINTEXT", "SASL_PLAINTEXT") and any(tls_files):
            raise ValueError(
                f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL is {protocol}: "
                "use SSL (or SASL_SSL)"
            )
        if ("ssl_key_file" in d and "ssl_cert_file" in d) and (
            (d.get("ssl_cert_file") is None) != (d.get("ssl_key_file") is None)
        ):
            raise ValueError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together")
        return value

    @field_validator("brokers")
    @classmethod
    def _brokers_not_empty(cls, value: str) -> str:
        if not [b for b in value.split(",") if b.strip()]:
            raise ValueError("needs at least one host:port")
        return value


class OutputSettings(Section):
    """What synchub writes to Kafka: value format per source, tombstones, compaction, Avro."""

    formats: dict[str, Literal["envelope", "flat"]] = Field(
        default_factory=dict, validation_alias=env("formats", "SYNCHUB_OUTPUT_FORMATS")
    )
    """Value format per source, JSON such as ``{"wiw": "flat"}``: ``envelope`` (the default
    for every source not named) or ``flat`` (the record itself; ``event_id``, ``op`` and
    ``source`` in headers only)."""
    tombstones: bool = Field(default=True, validation_alias=env("tombstones", "KAFKA_TOMBSTONES"))
    """After a delete event, publish a Kafka tombstone (same key and headers, null value),
    so a compacted topic drops the key."""
    compact_topics: bool = Field(
        default=False, validation_alias=env("compact_topics", "KAFKA_COMPACT_TOPICS")
    )
    """Topics synchub creates get ``cleanup.policy=compact`` (existing topics are left alone)."""
    schema_registry_url: str | None = Field(
        default=None, validation_alias=env("schema_registry_url", "SCHEMA_REGISTRY_URL")
    )
    """Confluent-compatible Schema Registry: when set, flat values of sources with an Avro
    schema in ``schemas/avro/`` are Avro in the Confluent wire format."""
