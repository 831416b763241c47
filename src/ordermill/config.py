"""Settings: the only place that reads the environment (``ORDERMILL_…``) or a config file.

Settings are built once at an entry point (the CLI, the app factory) and passed down as a value.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CsvList = Annotated[list[str], NoDecode]


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of ordermill, read from ``ORDERMILL_<NAME>`` environment variables.

    A TOML file named by ``ORDERMILL_CONFIG_FILE`` may hold the same names in lower case;
    environment variables win over it. See docs/reference/configuration.md.
    """

    model_config = SettingsConfigDict(env_prefix="ORDERMILL_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///.ordermill/ordermill.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = None
    admin_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    data_dir: Path = Path(".ordermill")

    connector_ca_file: Path | None = None
    connector_allow_networks: CsvList = Field(default_factory=list)
    connector_allow_http: CsvList = Field(default_factory=list)
    connector_max_per_host: int = Field(default=16, ge=1)
    connector_user_agent: str = "ordermill"

    # E-mail for send-email and manual-confirmation notifications (docs/handlers.md).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_from: str | None = None
    smtp_ca_file: Path | None = None

    signing_secret_overlap_hours: float = Field(default=24.0, ge=0)

    # Argon2id for users' passwords (RFC 9106's second recommendation by default).
    password_time_cost: int = Field(default=3, ge=1, le=100)
    password_memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    password_parallelism: int = Field(default=4, ge=1, le=64)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 90)

    # Single sign-on with OpenID Connect (docs/concepts/users.md): on when all three are set.
    oidc_discovery_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_label: str = Field(default="single sign-on", min_length=1, max_length=60)
    oidc_ca_file: Path | None = None

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    worker_concurrency: int = Field(default=64, ge=1, le=10_000)
    lease_seconds: float = Field(default=30.0, gt=0)
    poll_interval_seconds: float = Field(default=0.5, gt=0)

    # The export handler and the blob store its files go to (docs/reference/configuration.md).
    export_max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    export_max_order_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)
    blob_store: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str | None = None

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] = "console"

    _split = field_validator("connector_allow_networks", "connector_allow_http", mode="before")(
        _split_csv
    )

    @field_validator("connector_allow_networks")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not a CIDR network such as 10.0.0.0/8") from exc
        return value

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        if self.public_url is None:
            self.public_url = f"http://{self.host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        return self

    @property
    def base_url(self) -> str:
        """The public base URL (never None once validated)."""
        assert self.public_url is not None
        return self.public_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        import os

        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("ORDERMILL_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)
