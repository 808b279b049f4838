"""Settings: the environment, read once into one typed object.

Secrets come from the environment and are `SecretStr`, so no repr, log line or error shows them. Each secret
variable (and `CONTACT_MCP_DB`, since a PostgreSQL URL may carry a password) may instead be given as `<VAR>_FILE`, the
path of a file holding the value, as Docker and Kubernetes mount secrets. A bad value is a `ConfigError` naming the
variable, never echoing what it held.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from contact_mcp.errors import ConfigError
from contact_mcp.redact import misread_userinfo

HTTP_PROVIDERS = ("feather", "tetherai", "blooio", "featurebase", "protocol")
KNOWN_PROVIDERS = ("local", *HTTP_PROVIDERS)
FILE_SUFFIX = "_FILE"
_ALSO_FROM_FILE = ("db",)  # not a SecretStr, but a PostgreSQL URL may carry a password
_MAX_FILE_BYTES = 65_536  # a secret is short; this keeps a mistaken path (a log, /dev/zero) from being read whole
MIN_REQUEST_STATE_KEY_BYTES = 32  # the SDK's own floor for a request-state key
# A URL's scheme (RFC 3986), two characters at least: `C:\\contacts.db` is a Windows path, not a URL.
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")

ConfirmMode = Literal["destructive", "never"]
"""`CONTACT_MCP_CONFIRM`: ask before what cannot be undone (default), or never (unattended pipelines)."""


def _default_db() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "contact-mcp" / "contacts.db")


def _env(name: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name))


class FileVariables(PydanticBaseSettingsSource):
    """`<VAR>_FILE` for every variable `from_file()` allows: the file's content, surrounding whitespace stripped.

    Setting both `<VAR>` and `<VAR>_FILE` is a `ConfigError`, as is a file that cannot be read; neither error shows
    what the file holds.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every variable at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            if not from_file(name, info):
                continue
            variable = _variable(name, info)
            path = os.environ.get(variable + FILE_SUFFIX, "")
            if not path:
                continue
            if os.environ.get(variable, ""):
                raise ConfigError(f"{variable} and {variable}{FILE_SUFFIX} are both set; set only one of them")
            values[variable] = _read_value_file(variable + FILE_SUFFIX, Path(path))
        return values


def _read_value_file(variable: str, path: Path) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path} ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise ConfigError(f"{variable}: {path} is larger than {_MAX_FILE_BYTES} bytes; it should hold just the value")
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}: {path} is not UTF-8 text") from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, FileVariables(settings_cls), env_settings, dotenv_settings, file_secret_settings)

    providers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("local",), validation_alias=AliasChoices("CONTACT_MCP_PROVIDERS")
    )
    db: str = Field(default_factory=_default_db, validation_alias=AliasChoices("CONTACT_MCP_DB"), repr=False)
    """The store: a SQLite file path, or a `postgresql://` / `postgres://` URL (which may hold a password)."""
    db_pool_size: int = Field(default=5, ge=1, le=1000, validation_alias=AliasChoices("CONTACT_MCP_DB_POOL_SIZE"))
    """PostgreSQL connections one server process holds at most. A process is one event loop on one core, and a
    call holds its connection only for its statements, so a few connections keep it busy; more add database backends
    that compete for the same cores (three replicas sharing two cores spent 0.80 ms of their CPU and 0.16 ms of
    PostgreSQL's per 2026-07-28 get_contact with 5, 0.94 and 0.21 ms with 10: bench/FINDINGS.md) and count against
    PostgreSQL's `max_connections` (100 by default)."""
    default_region: str | None = _env("CONTACT_MCP_DEFAULT_REGION")
    http_token: SecretStr | None = _env("CONTACT_MCP_HTTP_TOKEN")
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias=AliasChoices("CONTACT_MCP_ALLOWED_HOSTS")
    )
    log_level: str = Field(default="WARNING", validation_alias=AliasChoices("CONTACT_MCP_LOG_LEVEL"))
    read_only: bool = Field(default=False, validation_alias=AliasChoices("CONTACT_MCP_READ_ONLY"))
    tools: Annotated[tuple[str, ...], NoDecode] = Field(default=(), validation_alias=AliasChoices("CONTACT_MCP_TOOLS"))
    exclude_tools: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias=AliasChoices("CONTACT_MCP_EXCLUDE_TOOLS")
    )
    max_sessions: int = Field(default=1000, ge=1, validation_alias=AliasChoices("CONTACT_MCP_MAX_SESSIONS"))
    session_idle_timeout_s: float = Field(
        default=600.0, gt=0, validation_alias=AliasChoices("CONTACT_MCP_SESSION_IDLE_TIMEOUT")
    )
    max_connections: int = Field(default=10_000, ge=1, validation_alias=AliasChoices("CONTACT_MCP_MAX_CONNECTIONS"))
    """HTTP connections open at once, idle ones and probes included (fewer if the open-files limit is lower); one
    more is answered 503 and closed. An idle connection holds about 5 KB and a file descriptor."""
    drain_timeout_s: float = Field(default=20.0, ge=0, validation_alias=AliasChoices("CONTACT_MCP_DRAIN_TIMEOUT"))
    request_timeout_s: float = Field(default=30.0, gt=0, validation_alias=AliasChoices("CONTACT_MCP_REQUEST_TIMEOUT"))
    """How long an HTTP client has to send a request: its headers, from connecting or from the previous answer
    (past it the connection is closed), then again its whole body (past it the request is answered 408)."""
    confirm: ConfirmMode = Field(default="destructive", validation_alias=AliasChoices("CONTACT_MCP_CONFIRM"))
    server_name: str = Field(default="contact-mcp", validation_alias=AliasChoices("CONTACT_MCP_SERVER_NAME"))
    """The name every replica gives itself; a request state sealed by one replica is accepted by another only when
    both share this name (the seal's audience) and the key."""
    request_state_key: SecretStr | None = _env("CONTACT_MCP_REQUEST_STATE_KEY")
    """Comma list of keys (32+ bytes each) sealing the state of a call that asks the user, shared by every replica:
    the first seals, every one opens (rotation). Unset: a key made at start-up, good for one process only."""

    history_retention_days: int = Field(
        default=365, ge=0, validation_alias=AliasChoices("CONTACT_MCP_HISTORY_RETENTION_DAYS")
    )
    """Days the history of writes is kept; 0 keeps it forever."""

    connect_timeout_s: float = Field(default=5.0, gt=0, validation_alias=AliasChoices("CONTACT_MCP_CONNECT_TIMEOUT"))
    read_timeout_s: float = Field(default=30.0, gt=0, validation_alias=AliasChoices("CONTACT_MCP_READ_TIMEOUT"))
    max_response_bytes: int = Field(
        default=1_048_576, gt=0, validation_alias=AliasChoices("CONTACT_MCP_MAX_RESPONSE_BYTES")
    )
    retry_attempts: int = Field(default=3, ge=1, le=10, validation_alias=AliasChoices("CONTACT_MCP_RETRY_ATTEMPTS"))
    retry_deadline_s: float = Field(default=30.0, gt=0, validation_alias=AliasChoices("CONTACT_MCP_RETRY_DEADLINE"))
    retry_wait_initial_s: float = Field(
        default=0.25, ge=0, validation_alias=AliasChoices("CONTACT_MCP_RETRY_WAIT_INITIAL")
    )
    retry_wait_max_s: float = Field(default=5.0, ge=0, validation_alias=AliasChoices("CONTACT_MCP_RETRY_WAIT_MAX"))

    feather_api_key: SecretStr | None = _env("FEATHER_API_KEY")
    feather_base_url: str = Field(
        default="https://api-sandbox.featherhq.com", validation_alias=AliasChoices("FEATHER_BASE_URL")
    )
    tetherai_api_key: SecretStr | None = _env("TETHERAI_API_KEY")
    tetherai_base_url: str | None = _env("TETHERAI_BASE_URL")
    blooio_api_key: SecretStr | None = _env("BLOOIO_API_KEY")
    blooio_base_url: str = Field(default="https://api.blooio.com/v4", validation_alias=AliasChoices("BLOOIO_BASE_URL"))
    featurebase_api_key: SecretStr | None = _env("FEATUREBASE_API_KEY")
    featurebase_base_url: str = Field(
        default="https://do.featurebase.app", validation_alias=AliasChoices("FEATUREBASE_BASE_URL")
    )
    featurebase_api_version: str = Field(
        default="2026-01-01.nova", validation_alias=AliasChoices("FEATUREBASE_API_VERSION")
    )
    featurebase_identity_secret: SecretStr | None = _env("FEATUREBASE_IDENTITY_SECRET")
    protocol_api_key: SecretStr | None = _env("PROTOCOL_API_KEY")
    protocol_base_url: str | None = _env("PROTOCOL_BASE_URL")

    @field_validator("providers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            names = tuple(part.strip().lower() for part in value.split(",") if part.strip())
            return names or ("local",)
        return value

    @field_validator("db")
    @classmethod
    def _db(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("must be a file path or a postgresql:// URL")
        scheme = _URL_SCHEME.match(text)
        if scheme and not text.lower().startswith(("postgresql://", "postgres://")):
            # Else `postgresql+psycopg://…` or `postgresql:/…` would silently be a SQLite file named after the URL,
            # one per replica, its password in the path. Only the scheme is quoted: the rest may hold a password.
            supported = "give a postgresql:// (or postgres://) URL, or a SQLite file path"
            raise ValueError(f"a {scheme[1]!r} URL is not supported: {supported}")
        if scheme and not text.startswith(("postgresql://", "postgres://")):
            # libpq reads a scheme in lower case only; in capitals it refused the URL as a malformed "key=value" string.
            text = text[: scheme.end(1)].lower() + text[scheme.end(1) :]
        if misread_userinfo(text):  # nothing of the URL quoted: it holds the password
            raise ValueError(
                "the URL may hold one '@', between the user name and password and the host, with no '/' before it; "
                "percent-encode any other '@' as %40 and a '/' in the user name or password as %2F (else PostgreSQL "
                "reads part of the password as the host or database, and quotes it in its errors)"
            )
        return text

    @field_validator("allowed_hosts", "tools", "exclude_tools", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("providers")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in KNOWN_PROVIDERS]
        if unknown:
            raise ValueError(f"unknown provider(s) {', '.join(unknown)}; known: {', '.join(KNOWN_PROVIDERS)}")
        return tuple(dict.fromkeys(value))

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        import phonenumbers

        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be an ISO 3166 two-letter country code such as US, GB or DE")
        return region

    @field_validator("confirm", mode="before")
    @classmethod
    def _confirm(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("server_name")
    @classmethod
    def _server_name(cls, value: str) -> str:
        name = value.strip()
        if not name:
            raise ValueError("must not be empty (every replica needs the same name)")
        return name

    @field_validator("request_state_key")
    @classmethod
    def _request_state_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        keys = [key.strip() for key in value.get_secret_value().split(",")]
        if any(len(key.encode()) < MIN_REQUEST_STATE_KEY_BYTES for key in keys):
            raise ValueError(
                f"each key (comma-separated) must be at least {MIN_REQUEST_STATE_KEY_BYTES} bytes of secret "
                'randomness, e.g. python -c "import secrets; print(secrets.token_hex(32))"'
            )
        if len(set(keys)) != len(keys):
            raise ValueError("a key is listed twice")
        return value

    def request_state_keys(self) -> list[str]:
        """The request-state key ring (first seals, all open); empty when the setting is not given."""
        if self.request_state_key is None:
            return []
        return [key.strip() for key in self.request_state_key.get_secret_value().split(",")]

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    def api_key(self, provider: str) -> SecretStr | None:
        value: SecretStr | None = getattr(self, f"{provider}_api_key")
        return value

    def base_url(self, provider: str) -> str | None:
        value: str | None = getattr(self, f"{provider}_base_url")
        return value

    def credentials(self, provider: str) -> tuple[str, str]:
        """(base URL, API key) of an HTTP provider; a `ConfigError` naming the variable when either is unusable."""
        upper = provider.upper()
        key = self.api_key(provider)
        secret = key.get_secret_value().strip() if key is not None else ""
        if not secret:
            raise ConfigError(f"{upper}_API_KEY is not set, but CONTACT_MCP_PROVIDERS enables {provider}")
        url = (self.base_url(provider) or "").strip()
        if not url:
            raise ConfigError(
                f"{upper}_BASE_URL is not set; {provider} publishes no default host, so it must be configured"
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{upper}_BASE_URL must start with http:// or https://")
        return url, secret


def _variable(field: str, info: FieldInfo | None) -> str:
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field


def env_name(field: str) -> str:
    """The environment variable a `Settings` field is read from."""
    return _variable(field, Settings.model_fields.get(field))


def from_file(field: str, info: FieldInfo) -> bool:
    """Whether a field's variable may be given as `<VAR>_FILE`: every secret, and the database."""
    return info.annotation is SecretStr or SecretStr in get_args(info.annotation) or field in _ALSO_FROM_FILE


def file_variables() -> tuple[str, ...]:
    """The variables that may be given as `<VAR>_FILE` (README's configuration section lists them)."""
    return tuple(env_name(name) for name, info in Settings.model_fields.items() if from_file(name, info))


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (plus explicit overrides, for tests); a bad value is a `ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors(include_input=False, include_url=False):
            field = str(err["loc"][0]) if err["loc"] else "?"
            problems.append(f"{env_name(field)}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
