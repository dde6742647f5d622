"""One typed settings tree for the worker, the starter and the dev stack.

Environment names stay compatible with the systems synchub replaces (slot_sync's
``SYNC_DAYS_AHEAD``, ``KAFKA_BROKERS``, ``REDIS_HOST`` ... and the Advoware step's
``CALENDAR_SYNC_DEBUG_KUERZEL``), so an operator can point the old environment at
synchub. Only the entry points (``worker.py``, ``starter.py``) build ``Settings``;
everything else receives the part it needs. Tests override by keyword arguments.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as _UnparsableSetting


def _env(*names: str) -> Any:
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


class _Section(BaseSettings):
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
        return init_settings, _DocumentedEnv(settings_cls)


class TemporalSettings(_Section):
    """Where the Temporal frontend is and which task queue synchub's worker polls."""

    address: str = Field(
        default="127.0.0.1:7233", validation_alias=_env("address", "TEMPORAL_ADDRESS")
    )
    """host:port of the Temporal frontend (dev server, cluster or Temporal Cloud)."""
    namespace: str = Field(
        default="default", validation_alias=_env("namespace", "TEMPORAL_NAMESPACE")
    )
    """Temporal namespace the workflows and schedules live in."""
    task_queue: str = Field(
        default="synchub", validation_alias=_env("task_queue", "TEMPORAL_TASK_QUEUE")
    )
    """Task queue shared by the worker and every workflow start."""
    api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("api_key", "TEMPORAL_API_KEY")
    )
    """API key for Temporal Cloud; implies TLS."""
    tls: bool = Field(default=False, validation_alias=_env("tls", "TEMPORAL_TLS"))
    """Connect with TLS (set for Temporal Cloud or a TLS-terminated cluster)."""
    graceful_shutdown_seconds: float = Field(
        default=45.0,
        ge=0,
        validation_alias=_env("graceful_shutdown_seconds", "WORKER_GRACEFUL_SHUTDOWN_SECONDS"),
    )
    """After SIGTERM, running pages get this long to finish and commit before they are
    cancelled; keep it below the pod's ``terminationGracePeriodSeconds`` (60 s)."""
    codec_keys: SecretStr | None = Field(
        default=None, validation_alias=_env("codec_keys", "SYNCHUB_CODEC_KEYS")
    )
    """Comma list ``id:base64key`` of 32-byte AES keys, e.g. ``k2026:...,k2025:...``; every
    key whose payloads may still be read stays listed. Unset: payloads are plaintext (the
    embedded default generates one under its state folder)."""
    codec_active_key: str | None = Field(
        default=None, validation_alias=_env("codec_active_key", "SYNCHUB_CODEC_ACTIVE_KEY")
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
        default=None, validation_alias=_env("tls_ca_file", "TEMPORAL_TLS_CA_FILE")
    )
    """CA bundle (PEM) that signed the frontend's certificate; implies TLS."""
    tls_cert_file: FilePath | None = Field(
        default=None, validation_alias=_env("tls_cert_file", "TEMPORAL_TLS_CERT_FILE")
    )
    """Client certificate (PEM) for mTLS, e.g. Temporal Cloud's; needs TEMPORAL_TLS_KEY_FILE."""
    tls_key_file: FilePath | None = Field(
        default=None,
        validation_alias=_env("tls_key_file", "TEMPORAL_TLS_KEY_FILE"),
        validate_default=True,
    )
    """Private key (PEM) of the client certificate."""
    tls_server_name: str | None = Field(
        default=None, validation_alias=_env("tls_server_name", "TEMPORAL_TLS_SERVER_NAME")
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


class KafkaSettings(_Section):
    """Broker addresses and topic names (slot_sync's ``KAFKA_BROKERS``/``KAFKA_TOPIC_NAME``)."""

    brokers: str = Field(
        default="127.0.0.1:9092", validation_alias=_env("brokers", "KAFKA_BROKERS")
    )
    """Comma-separated bootstrap servers."""
    wiw_topic: str = Field(
        default="wiw.shifts",
        validation_alias=_env("wiw_topic", "KAFKA_TOPIC_NAME", "KAFKA_WIW_TOPIC"),
    )
    """Topic for When I Work shifts (slot_sync published every shift to KAFKA_TOPIC_NAME)."""
    deadletter_topic: str = Field(
        default="synchub.deadletter",
        validation_alias=_env("deadletter_topic", "KAFKA_DEADLETTER_TOPIC"),
    )
    """Malformed upstream records land here with the reason."""
    advoware_topic: str = Field(
        default="advoware.appointments",
        validation_alias=_env("advoware_topic", "KAFKA_ADVOWARE_TOPIC"),
    )
    """Topic for Advoware calendar appointments."""
    topic_partitions: int = Field(
        default=4, ge=1, validation_alias=_env("topic_partitions", "KAFKA_TOPIC_PARTITIONS")
    )
    """Partitions for topics synchub creates at start (existing topics are left alone)."""
    delivery_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("delivery_timeout_seconds", "KAFKA_DELIVERY_TIMEOUT_SECONDS"),
    )
    """How long a message may wait for the broker's acknowledgement (``message.timeout.ms``);
    bounds a publish against a dead broker; keep it below the graceful shutdown timeout."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        validation_alias=_env("security_protocol", "KAFKA_SECURITY_PROTOCOL"),
    )
    """``PLAINTEXT``, ``SSL`` (TLS), ``SASL_PLAINTEXT`` or ``SASL_SSL`` (SASL over TLS)."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, validation_alias=_env("sasl_mechanism", "KAFKA_SASL_MECHANISM")
    )
    """SASL mechanism for the ``SASL_*`` protocols."""
    sasl_username: str | None = Field(
        default=None, validation_alias=_env("sasl_username", "KAFKA_SASL_USERNAME")
    )
    """SASL user."""
    sasl_password: SecretStr | None = Field(
        default=None, validation_alias=_env("sasl_password", "KAFKA_SASL_PASSWORD")
    )
    """SASL password."""
    ssl_ca_file: FilePath | None = Field(
        default=None, validation_alias=_env("ssl_ca_file", "KAFKA_SSL_CA_FILE")
    )
    """CA bundle (PEM) that signed the brokers' certificates; default: the system's."""
    ssl_cert_file: FilePath | None = Field(
        default=None, validation_alias=_env("ssl_cert_file", "KAFKA_SSL_CERT_FILE")
    )
    """Client certificate (PEM) when the brokers require mutual TLS."""
    ssl_key_file: FilePath | None = Field(
        default=None, validation_alias=_env("ssl_key_file", "KAFKA_SSL_KEY_FILE")
    )
    """Private key (PEM) of the client certificate."""
    ssl_key_password: SecretStr | None = Field(
        default=None,
        validation_alias=_env("ssl_key_password", "KAFKA_SSL_KEY_PASSWORD"),
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


class RedisSettings(_Section):
    """The change store (slot_sync's ``REDIS_HOST`` and ``EXPIRE_CACHE``)."""

    url: str = Field(
        default="redis://127.0.0.1:6379/0", validation_alias=_env("url", "REDIS_HOST", "REDIS_URL")
    )
    """Redis URL, e.g. ``redis://localhost:6379/0``; a bare ``host:port`` is accepted."""
    expire_cache: int = Field(
        default=604_800, ge=60, validation_alias=_env("expire_cache", "EXPIRE_CACHE")
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

    username: str | None = Field(default=None, validation_alias=_env("username", "REDIS_USERNAME"))
    """ACL user (Redis 6+ / valkey); unset: the ``default`` user."""
    password: SecretStr | None = Field(
        default=None, validation_alias=_env("password", "REDIS_PASSWORD")
    )
    """Password of the ACL user (or ``requirepass``); kept out of REDIS_URL and the logs."""
    ssl_ca_file: FilePath | None = Field(
        default=None, validation_alias=_env("ssl_ca_file", "REDIS_SSL_CA_FILE")
    )
    """CA bundle (PEM) for ``rediss://``; default: the system's."""
    ssl_cert_file: FilePath | None = Field(
        default=None, validation_alias=_env("ssl_cert_file", "REDIS_SSL_CERT_FILE")
    )
    """Client certificate (PEM) when the server requires mutual TLS."""
    ssl_key_file: FilePath | None = Field(
        default=None,
        validation_alias=_env("ssl_key_file", "REDIS_SSL_KEY_FILE"),
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


class SyncSettings(_Section):
    """How much to sync and how often (slot_sync's runner settings)."""

    days_ahead: int = Field(
        default=1, ge=0, le=366, validation_alias=_env("days_ahead", "SYNC_DAYS_AHEAD")
    )
    """Days after today in the When I Work window."""
    days_prior: int = Field(
        default=0, ge=0, le=366, validation_alias=_env("days_prior", "SYNC_DAYS_PRIOR")
    )
    """Days before today in the When I Work window."""
    interval_seconds: int = Field(
        default=60, ge=1, validation_alias=_env("interval_seconds", "SYNC_SLEEP_PERIOD_SECONDS")
    )
    """Schedule interval of the WIW sync (slot_sync slept this long between runs)."""
    timezone: str = Field(default="UTC", validation_alias=_env("timezone", "SYNC_TIMEZONE"))
    """Timezone whose calendar days make the WIW day partitions."""
    max_concurrent: int = Field(
        default=20, ge=1, le=1000, validation_alias=_env("max_concurrent", "SYNC_MAX_CONCURRENT")
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


class WiwSettings(_Section):
    """When I Work credentials: a pre-issued token (``WIW_KEY``) or a developer key + login."""

    api_url: str = Field(
        default="https://api.wheniwork.com", validation_alias=_env("api_url", "WIW_API_URL")
    )
    """Base URL of the v2 API (the simulator's address in the dev stack)."""
    login_url: str | None = Field(default=None, validation_alias=_env("login_url", "WIW_LOGIN_URL"))
    """Login host; defaults to ``{api_url}/2/login``."""
    token: SecretStr | None = Field(
        default=None, validation_alias=_env("token", "WIW_KEY", "WIW_TOKEN")
    )
    """Pre-issued W-Token, as slot_sync's WIW_KEY. Used until the API answers 401."""
    developer_key: SecretStr | None = Field(
        default=None, validation_alias=_env("developer_key", "WIW_DEVELOPER_KEY")
    )
    """Developer key sent as W-Key on login."""
    email: str | None = Field(default=None, validation_alias=_env("email", "WIW_EMAIL"))
    """Login e-mail of the API user."""
    password: SecretStr | None = Field(
        default=None, validation_alias=_env("password", "WIW_PASSWORD")
    )
    """Login password of the API user."""
    user_id: int | None = Field(default=None, validation_alias=_env("user_id", "WIW_USER_ID"))
    """W-UserId for accounts with several workplaces."""
    timeout_seconds: float = Field(
        default=30.0, gt=0, validation_alias=_env("timeout_seconds", "WIW_TIMEOUT_SECONDS")
    )
    """HTTP timeout per request."""
    lookup_concurrency: int = Field(
        default=8,
        ge=1,
        le=100,
        validation_alias=_env("lookup_concurrency", "WIW_LOOKUP_CONCURRENCY"),
    )
    """Point lookups in flight at once when resolving shifts missing from a window."""

    @property
    def configured(self) -> bool:
        """True when either a token or a full login is set."""
        return self.token is not None or (
            self.developer_key is not None and self.email is not None and self.password is not None
        )


class AdvowareSettings(_Section):
    """Advoware (advo-net) API access and the calendar sync window.

    The token is requested with an HMAC-SHA512 signature keyed by the base64-decoded API key;
    AppID, API key and the employee login all come from Advoware and stay in the worker.
    """

    app_id: str | None = Field(default=None, validation_alias=_env("app_id", "ADVOWARE_APP_ID"))
    """App id issued by Advoware, enabled for the Kanzlei."""
    api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("api_key", "ADVOWARE_API_KEY")
    )
    """API key (a base64 string) that keys the token signature."""
    kanzlei: str | None = Field(default=None, validation_alias=_env("kanzlei", "ADVOWARE_KANZLEI"))
    """The firm identifier (Kanzleikennung)."""
    database: str | None = Field(
        default=None, validation_alias=_env("database", "ADVOWARE_DATABASE")
    )
    """The firm's database name."""
    user: str | None = Field(default=None, validation_alias=_env("user", "ADVOWARE_USER"))
    """Kürzel of the employee the API logs in as."""
    password: SecretStr | None = Field(
        default=None, validation_alias=_env("password", "ADVOWARE_PASSWORD")
    )
    """That employee's Advoware password."""
    role: int = Field(default=2, validation_alias=_env("role", "ADVOWARE_ROLE"))
    """Role in the token request (2 in every known example)."""
    product: int = Field(default=64, validation_alias=_env("product", "ADVOWARE_PRODUCT"))
    """Product id; 64 for third parties."""
    api_url: str | None = Field(default=None, validation_alias=_env("api_url", "ADVOWARE_API_URL"))
    """API base with trailing slash; discovered by Kanzlei when unset."""
    security_url: str = Field(
        default="https://security.advo-net.net/",
        validation_alias=_env("security_url", "ADVOWARE_SECURITY_URL"),
    )
    """Security gateway that issues tokens."""
    discovery_url: str | None = Field(
        default=None, validation_alias=_env("discovery_url", "ADVOWARE_DISCOVERY_URL")
    )
    """URL discovery service (``.../AdvonetConfigurator/api/Url``), used when api_url is unset."""
    timeout_seconds: float = Field(
        default=15.0, gt=0, validation_alias=_env("timeout_seconds", "ADVOWARE_TIMEOUT_SECONDS")
    )
    """HTTP timeout; the API relays to the firm's on-premise connector, which can be slow."""
    token_refresh_seconds: int = Field(
        default=3180,
        ge=60,
        validation_alias=_env("token_refresh_seconds", "ADVOWARE_TOKEN_REFRESH_SECONDS"),
    )
    """Reuse a token at most this long (tokens live about 55 minutes)."""
    days_back: int = Field(
        default=30, ge=0, le=3660, validation_alias=_env("days_back", "ADVOWARE_DAYS_BACK")
    )
    """Days before today in each employee's window."""
    days_ahead: int = Field(
        default=365, ge=0, le=3660, validation_alias=_env("days_ahead", "ADVOWARE_DAYS_AHEAD")
    )
    """Days after today in each employee's window."""
    page_days: int = Field(
        default=400, ge=1, le=7321, validation_alias=_env("page_days", "ADVOWARE_PAGE_DAYS")
    )
    """Days of a window fetched per page; a window no longer than this is one request."""
    full_content: bool = Field(
        default=True, validation_alias=_env("full_content", "ADVOWARE_FULL_CONTENT")
    )
    """Publish subject, notes, location and case; false publishes busy blocks only."""
    debug_kuerzel: str = Field(
        default="", validation_alias=_env("debug_kuerzel", "CALENDAR_SYNC_DEBUG_KUERZEL")
    )
    """Comma list of employees to sync (e.g. ``SB,AI,RO``); empty = all."""
    lookup_concurrency: int = Field(
        default=8,
        ge=1,
        le=100,
        validation_alias=_env("lookup_concurrency", "ADVOWARE_LOOKUP_CONCURRENCY"),
    )
    """Point lookups in flight when resolving appointments missing from a window."""
    interval_minutes: int = Field(
        default=15,
        ge=1,
        validation_alias=_env("interval_minutes", "ADVOWARE_SYNC_INTERVAL_MINUTES"),
    )
    """Schedule interval of the Advoware sync."""

    @property
    def configured(self) -> bool:
        """True when every credential of the token request is set."""
        return all(
            v is not None
            for v in (
                self.app_id,
                self.api_key,
                self.kanzlei,
                self.database,
                self.user,
                self.password,
            )
        )

    @property
    def debug_list(self) -> list[str]:
        """Employees named in ``CALENDAR_SYNC_DEBUG_KUERZEL``."""
        return [k.strip() for k in self.debug_kuerzel.split(",") if k.strip()]


class TemuShop(BaseModel):
    """One TEMU shop (region + app + seller token). Only ``id`` ever leaves the worker."""

    id: str
    """Shop id used in workflow ids, inputs and Redis keys, e.g. ``us-main``."""
    region: str = "us"
    """``us``, ``eu`` or ``global``: picks the router host; app, token and host must match."""
    app_key: str
    """App key of the TEMU app (not secret, but kept in the worker)."""
    app_secret: SecretStr
    """App secret that signs every request."""
    access_token: SecretStr
    """Seller access token of the shop."""
    api_url: str | None = None
    """Router URL override (the simulator's address in the dev stack and tests)."""

    model_config = {"extra": "forbid"}


TEMU_HOSTS = {
    "us": "https://openapi-b-us.temu.com/openapi/router",
    "eu": "https://openapi-b-eu.temu.com/openapi/router",
    "global": "https://openapi-b-global.temu.com/openapi/router",
}
"""Router host per region (TEMU Open Platform, partner API)."""


class TemuSettings(_Section):
    """TEMU shops, rate limit and topics of the order and inventory workflows."""

    shops: list[TemuShop] = Field(
        default_factory=list, validation_alias=_env("shops", "TEMU_SHOPS")
    )
    """JSON list of shops: ``[{"id", "region", "app_key", "app_secret", "access_token"}]``."""
    rate_limit_qps: float = Field(
        default=20.0, gt=0, validation_alias=_env("rate_limit_qps", "TEMU_RATE_LIMIT_QPS")
    )
    """Requests per second per app key, shared by every worker process through Redis."""
    timeout_seconds: float = Field(
        default=30.0, gt=0, validation_alias=_env("timeout_seconds", "TEMU_TIMEOUT_SECONDS")
    )
    """HTTP timeout per request."""
    orders_topic: str = Field(
        default="temu.orders", validation_alias=_env("orders_topic", "KAFKA_TEMU_ORDERS_TOPIC")
    )
    """Changed parent orders."""
    inventory_topic: str = Field(
        default="temu.inventory.changes",
        validation_alias=_env("inventory_topic", "KAFKA_TEMU_INVENTORY_TOPIC"),
    )
    """Audit events of applied stock changes."""
    shipments_topic: str = Field(
        default="erp.shipments",
        validation_alias=_env("shipments_topic", "KAFKA_ERP_SHIPMENTS_TOPIC"),
    )
    """Shipment confirmations the ERP publishes (order, carrier, tracking number)."""
    stock_topic: str = Field(
        default="erp.stock", validation_alias=_env("stock_topic", "KAFKA_ERP_STOCK_TOPIC")
    )
    """Desired stock per seller SKU (compacted, key = SKU) published by the ERP."""
    orders_interval_minutes: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("orders_interval_minutes", "TEMU_ORDERS_INTERVAL_MINUTES"),
    )
    """Schedule interval of the orders workflow."""
    orders_overlap_seconds: int = Field(
        default=600,
        ge=0,
        validation_alias=_env("orders_overlap_seconds", "TEMU_ORDERS_OVERLAP_SECONDS"),
    )
    """Seconds before the checkpoint every orders pass reads again: TEMU's clock may be up
    to 300 s off the worker's and its list shows changes late (index lag); fingerprints
    keep the re-read from publishing twice. Values below 300 risk losing changes."""
    inventory_interval_minutes: int = Field(
        default=5,
        ge=1,
        validation_alias=_env("inventory_interval_minutes", "TEMU_INVENTORY_INTERVAL_MINUTES"),
    )
    """Schedule interval of the quick inventory run (the full one runs nightly)."""
    inventory_full_cron: str = Field(
        default="0 2 * * *",
        validation_alias=_env("inventory_full_cron", "TEMU_INVENTORY_FULL_CRON"),
    )
    """Cron expression (UTC) of the full inventory run: nightly at 02:00 by default."""

    @field_validator("shops")
    @classmethod
    def _unique_ids(cls, shops: list[TemuShop]) -> list[TemuShop]:
        ids = [s.id for s in shops]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"shop ids must be unique, repeated: {', '.join(dupes)}")
        for shop in shops:
            if shop.region not in TEMU_HOSTS and shop.api_url is None:
                raise ValueError(
                    f"shop {shop.id}: region must be one of {', '.join(TEMU_HOSTS)} "
                    "(or give api_url)"
                )
        return shops

    def shop(self, shop_id: str) -> TemuShop | None:
        """The shop with this id, if configured."""
        return next((s for s in self.shops if s.id == shop_id), None)


class DevStackSettings(_Section):
    """Ports and state folder of the embedded default (``starter.py dev``)."""

    state_dir: Path = Field(
        default=Path(".synchub"), validation_alias=_env("state_dir", "SYNCHUB_STATE_DIR")
    )
    """Folder for the Temporal SQLite history and logs; survives restarts."""
    host: str = Field(default="127.0.0.1", validation_alias=_env("host", "SYNCHUB_DEV_HOST"))
    """Loopback address every embedded service binds to."""
    temporal_port: int = Field(
        default=7233, validation_alias=_env("temporal_port", "SYNCHUB_TEMPORAL_PORT")
    )
    """Temporal frontend port."""
    ui_port: int = Field(default=8233, validation_alias=_env("ui_port", "SYNCHUB_UI_PORT"))
    """Temporal Web UI port."""
    kafka_port: int = Field(default=9092, validation_alias=_env("kafka_port", "SYNCHUB_KAFKA_PORT"))
    """Kafka-protocol broker (tansu) port."""
    redis_port: int = Field(default=6379, validation_alias=_env("redis_port", "SYNCHUB_REDIS_PORT"))
    """Redis-protocol server (valkey) port."""
    wiw_port: int = Field(default=8081, validation_alias=_env("wiw_port", "SYNCHUB_WIW_SIM_PORT"))
    """When I Work simulator port."""
    advoware_port: int = Field(
        default=8082, validation_alias=_env("advoware_port", "SYNCHUB_ADVOWARE_SIM_PORT")
    )
    """Advoware simulator port."""
    advoware_employees: int = Field(
        default=12,
        ge=0,
        validation_alias=_env("advoware_employees", "SYNCHUB_ADVOWARE_SIM_EMPLOYEES"),
    )
    """Employees the Advoware simulator generates at start."""
    advoware_appointments: int = Field(
        default=40,
        ge=0,
        validation_alias=_env("advoware_appointments", "SYNCHUB_ADVOWARE_SIM_APPOINTMENTS"),
    )
    """Appointments per employee the Advoware simulator generates at start."""
    temu_port: int = Field(
        default=8083, validation_alias=_env("temu_port", "SYNCHUB_TEMU_SIM_PORT")
    )
    """TEMU simulator port."""
    temu_orders: int = Field(
        default=300, ge=0, validation_alias=_env("temu_orders", "SYNCHUB_TEMU_SIM_ORDERS")
    )
    """Orders the TEMU simulator generates at start (last three days)."""
    wiw_shifts: int = Field(
        default=200, ge=0, validation_alias=_env("wiw_shifts", "SYNCHUB_WIW_SIM_SHIFTS")
    )
    """Shifts the simulator generates at start."""
    codec_port: int = Field(default=8234, validation_alias=_env("codec_port", "SYNCHUB_CODEC_PORT"))
    """Codec server port; the Web UI decrypts payloads through it."""


class OutputSettings(_Section):
    """What synchub writes to Kafka: value format per source, tombstones, compaction, Avro."""

    formats: dict[str, Literal["envelope", "flat"]] = Field(
        default_factory=dict, validation_alias=_env("formats", "SYNCHUB_OUTPUT_FORMATS")
    )
    """Value format per source, JSON such as ``{"wiw": "flat"}``: ``envelope`` (the default
    for every source not named) or ``flat`` (the record itself; ``event_id``, ``op`` and
    ``source`` in headers only)."""
    tombstones: bool = Field(default=True, validation_alias=_env("tombstones", "KAFKA_TOMBSTONES"))
    """After a delete event, publish a Kafka tombstone (same key and headers, null value),
    so a compacted topic drops the key."""
    compact_topics: bool = Field(
        default=False, validation_alias=_env("compact_topics", "KAFKA_COMPACT_TOPICS")
    )
    """Topics synchub creates get ``cleanup.policy=compact`` (existing topics are left alone)."""
    schema_registry_url: str | None = Field(
        default=None, validation_alias=_env("schema_registry_url", "SCHEMA_REGISTRY_URL")
    )
    """Confluent-compatible Schema Registry: when set, flat values of sources with an Avro
    schema in ``schemas/avro/`` are Avro in the Confluent wire format."""


class TelemetrySettings(_Section):
    """Traces and metrics (``infra.telemetry``, ``infra.metrics``)."""

    tracing: bool = Field(default=True, validation_alias=_env("tracing", "SYNCHUB_TRACING"))
    """Record spans (Temporal, upstream HTTP, Redis, Kafka publish); ``false`` turns them off."""
    traces_file: Path | None = Field(
        default=None, validation_alias=_env("traces_file", "SYNCHUB_TRACES_FILE")
    )
    """Where spans are appended as JSON lines when no OTLP endpoint is set (``trace``);
    default ``traces.jsonl`` in the state folder (SYNCHUB_STATE_DIR)."""
    otlp_endpoint: str | None = Field(
        default=None, validation_alias=_env("otlp_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    """OTLP/HTTP collector base URL (e.g. ``http://collector:4318``); spans go there instead."""
    metrics_address: str = Field(
        default="127.0.0.1:9464",
        validation_alias=_env("metrics_address", "SYNCHUB_METRICS_ADDRESS"),
    )
    """``host:port`` of the worker's Prometheus endpoint (``/metrics``); empty turns it off."""

    @field_validator("metrics_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if value and (not sep or not host or not port.isdigit() or int(port) > 65535):
            raise ValueError("expected host:port, e.g. 127.0.0.1:9464 (empty turns it off)")
        return value


class Settings(_Section):
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


_SECTIONS: dict[str, type[_Section]] = {
    "temporal": TemporalSettings,
    "kafka": KafkaSettings,
    "redis": RedisSettings,
    "sync": SyncSettings,
    "wiw": WiwSettings,
    "advoware": AdvowareSettings,
    "temu": TemuSettings,
    "dev": DevStackSettings,
    "output": OutputSettings,
    "telemetry": TelemetrySettings,
}


def _env_name(section: type[_Section], field: str) -> str:
    alias = section.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str) and c.isupper()]
        if names:
            return names[0]
    return field


def redact_url(text: str) -> str:
    """Hide the password of URLs such as ``redis://user:password@host``."""
    return re.sub(r"(://[^/@\s:]*:)[^/@\s]*@", r"\1***@", text)


def _unparsable(section: type[_Section], exc: _UnparsableSetting) -> str:
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


def load_settings(**overrides: Any) -> Settings:
    """Build the settings tree from the environment, failing with the variables to fix.

    Raises:
        SettingsError: one line per invalid variable, naming it and what is wrong.

    """
    sections: dict[str, Any] = {}
    problems: list[str] = []
    for name, section in _SECTIONS.items():
        if name in overrides:
            sections[name] = overrides[name]
            continue
        try:
            sections[name] = section()
        except _UnparsableSetting as exc:
            problems.append(_unparsable(section, exc))
        except ValidationError as exc:
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else ""
                env = _env_name(section, field) if field in section.model_fields else field
                where = env + "".join(
                    f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"][1:]
                )
                value = err.get("input")
                secret = any(w in where.upper() for w in ("KEY", "TOKEN", "PASSWORD", "SECRET"))
                # only scalars are echoed: a list or object (TEMU_SHOPS) may hold secrets
                scalar = isinstance(value, str | int | float | bool)
                shown = f" (got {redact_url(repr(value))})" if scalar and not secret else ""
                problems.append(f"{where}: {err['msg']}{shown}")
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))
    return Settings(**sections)
