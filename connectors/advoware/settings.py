"""Advoware settings: credentials, API addresses, the calendar window and schedule."""

from __future__ import annotations

from pydantic import Field, SecretStr

from models.settings_section import Section, env


class AdvowareSettings(Section):
    """Advoware (advo-net) API access and the calendar sync window.

    The token is requested with an HMAC-SHA512 signature keyed by the base64-decoded API key;
    AppID, API key and the employee login all come from Advoware and stay in the worker.
    """

    app_id: str | None = Field(default=None, validation_alias=env("app_id", "ADVOWARE_APP_ID"))
    """App id issued by Advoware, enabled for the Kanzlei."""
    api_key: SecretStr | None = Field(
        default=None, validation_alias=env("api_key", "ADVOWARE_API_KEY")
    )
    """API key (a base64 string) that keys the token signature."""
    kanzlei: str | None = Field(default=None, validation_alias=env("kanzlei", "ADVOWARE_KANZLEI"))
    """The firm identifier (Kanzleikennung)."""
    database: str | None = Field(
        default=None, validation_alias=env("database", "ADVOWARE_DATABASE")
    )
    """The firm's database name."""
    user: str | None = Field(default=None, validation_alias=env("user", "ADVOWARE_USER"))
    """Kürzel of the employee the API logs in as."""
    password: SecretStr | None = Field(
        default=None, validation_alias=env("password", "ADVOWARE_PASSWORD")
    )
    """That employee's Advoware password."""
    role: int = Field(default=2, validation_alias=env("role", "ADVOWARE_ROLE"))
    """Role in the token request (2 in every known example)."""
    product: int = Field(default=64, validation_alias=env("product", "ADVOWARE_PRODUCT"))
    """Product id; 64 for third parties."""
    api_url: str | None = Field(default=None, validation_alias=env("api_url", "ADVOWARE_API_URL"))
    """API base with trailing slash; discovered by Kanzlei when unset."""
    security_url: str = Field(
        default="https://security.advo-net.net/",
        validation_alias=env("security_url", "ADVOWARE_SECURITY_URL"),
    )
    """Security gateway that issues tokens."""
    discovery_url: str | None = Field(
        default=None, validation_alias=env("discovery_url", "ADVOWARE_DISCOVERY_URL")
    )
    """URL discovery service (``.../AdvonetConfigurator/api/Url``), used when api_url is unset."""
    timeout_seconds: float = Field(
        default=15.0, gt=0, validation_alias=env("timeout_seconds", "ADVOWARE_TIMEOUT_SECONDS")
    )
    """HTTP timeout; the API relays to the firm's on-premise connector, which can be slow."""
    token_refresh_seconds: int = Field(
        default=3180,
        ge=60,
        validation_alias=env("token_refresh_seconds", "ADVOWARE_TOKEN_REFRESH_SECONDS"),
    )
    """Reuse a token at most this long (tokens live about 55 minutes)."""
    days_back: int = Field(
        default=30, ge=0, le=3660, validation_alias=env("days_back", "ADVOWARE_DAYS_BACK")
    )
    """Days before today in each employee's window."""
    days_ahead: int = Field(
        default=365, ge=0, le=3660, validation_alias=env("days_ahead", "ADVOWARE_DAYS_AHEAD")
    )
    """Days after today in each employee's window."""
    page_days: int = Field(
        default=400, ge=1, le=7321, validation_alias=env("page_days", "ADVOWARE_PAGE_DAYS")
    )
    """Days of a window fetched per page; a window no longer than this is one request."""
    full_content: bool = Field(
        default=True, validation_alias=env("full_content", "ADVOWARE_FULL_CONTENT")
    )
    """Publish subject, notes, location and case; false publishes busy blocks only."""
    debug_kuerzel: str = Field(
        default="", validation_alias=env("debug_kuerzel", "CALENDAR_SYNC_DEBUG_KUERZEL")
    )
    """Comma list of employees to sync (e.g. ``SB,AI,RO``); empty = all."""
    lookup_concurrency: int = Field(
        default=8,
        ge=1,
        le=100,
        validation_alias=env("lookup_concurrency", "ADVOWARE_LOOKUP_CONCURRENCY"),
    )
    """Point lookups in flight when resolving appointments missing from a window."""
    interval_minutes: int = Field(
        default=15,
        ge=1,
        validation_alias=env("interval_minutes", "ADVOWARE_SYNC_INTERVAL_MINUTES"),
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
