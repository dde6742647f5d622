"""When I Work settings: credentials, API address, timeouts."""

from __future__ import annotations

from pydantic import Field, SecretStr

from models.settings_section import Section, env


class WiwSettings(Section):
    """When I Work credentials: a pre-issued token (``WIW_KEY``) or a developer key + login."""

    api_url: str = Field(
        default="https://api.wheniwork.com", validation_alias=env("api_url", "WIW_API_URL")
    )
    """Base URL of the v2 API (the simulator's address in the dev stack)."""
    login_url: str | None = Field(default=None, validation_alias=env("login_url", "WIW_LOGIN_URL"))
    """Login host; defaults to ``{api_url}/2/login``."""
    token: SecretStr | None = Field(
        default=None, validation_alias=env("token", "WIW_KEY", "WIW_TOKEN")
    )
    """Pre-issued W-Token, as slot_sync's WIW_KEY. Used until the API answers 401."""
    developer_key: SecretStr | None = Field(
        default=None, validation_alias=env("developer_key", "WIW_DEVELOPER_KEY")
    )
    """Developer key sent as W-Key on login."""
    email: str | None = Field(default=None, validation_alias=env("email", "WIW_EMAIL"))
    """Login e-mail of the API user."""
    password: SecretStr | None = Field(
        default=None, validation_alias=env("password", "WIW_PASSWORD")
    )
    """Login password of the API user."""
    user_id: int | None = Field(default=None, validation_alias=env("user_id", "WIW_USER_ID"))
    """W-UserId for accounts with several workplaces."""
    timeout_seconds: float = Field(
        default=30.0, gt=0, validation_alias=env("timeout_seconds", "WIW_TIMEOUT_SECONDS")
    )
    """HTTP timeout per request."""
    lookup_concurrency: int = Field(
        default=8,
        ge=1,
        le=100,
        validation_alias=env("lookup_concurrency", "WIW_LOOKUP_CONCURRENCY"),
    )
    """Point lookups in flight at once when resolving shifts missing from a window."""

    @property
    def configured(self) -> bool:
        """True when either a token or a full login is set."""
        return self.token is not None or (
            self.developer_key is not None and self.email is not None and self.password is not None
        )
