"""Settings: the environment read once; bad values are start-up errors that name the variable, never its value."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from contact_mcp import ConfigError, Settings, load_settings
from contact_mcp.settings import env_name, file_variables
from contact_mcp.tools.plan import make_plan


def test_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.providers == ("local",)
    assert settings.db.endswith("contacts.db")
    assert settings.default_region is None


def test_provider_list_is_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTACT_MCP_PROVIDERS", " Local , ")
    assert load_settings().providers == ("local",)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CONTACT_MCP_PROVIDERS", "local,nope", "CONTACT_MCP_PROVIDERS"),
        ("CONTACT_MCP_DEFAULT_REGION", "XX", "CONTACT_MCP_DEFAULT_REGION"),
        ("CONTACT_MCP_LOG_LEVEL", "LOUD", "CONTACT_MCP_LOG_LEVEL"),
        ("CONTACT_MCP_READ_TIMEOUT", "-1", "CONTACT_MCP_READ_TIMEOUT"),
        ("CONTACT_MCP_RETRY_ATTEMPTS", "many", "CONTACT_MCP_RETRY_ATTEMPTS"),
    ],
    ids=["unknown-provider", "bad-region", "bad-level", "negative-timeout", "not-a-number"],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert says in str(info.value)


def test_secret_values_never_appear_in_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTACT_MCP_RETRY_ATTEMPTS", "hunter2-secret-ish")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)


def test_region_is_upper_cased() -> None:
    assert load_settings(default_region="gb").default_region == "GB"


def test_enabled_provider_without_key_is_a_start_up_error() -> None:
    with pytest.raises(ConfigError, match="FEATHER_API_KEY"):
        make_plan(load_settings(providers="feather"))


@pytest.mark.parametrize("provider", ["tetherai", "protocol"])
def test_provider_without_published_host_needs_a_base_url(provider: str) -> None:
    settings = load_settings(providers=provider, **{f"{provider}_api_key": "k-1234"})
    with pytest.raises(ConfigError, match=f"{provider.upper()}_BASE_URL"):
        make_plan(settings)


# ---------- <VAR>_FILE: secrets mounted as files ----------


@pytest.mark.parametrize("variable", file_variables())
def test_each_secret_variable_can_be_read_from_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    value = str(tmp_path / "from-a-file.db") if variable == "CONTACT_MCP_DB" else "from-a-file-9876"
    if variable == "CONTACT_MCP_REQUEST_STATE_KEY":
        value = "from-a-file-" + "9876" * 8  # a request-state key is 32 bytes at least
    path = tmp_path / "secret"
    path.write_text(f"  {value}\n")  # as `echo` and editors leave it
    monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(f"{variable}_FILE", str(path))

    settings = load_settings()

    (field,) = [name for name in Settings.model_fields if env_name(name) == variable]
    got = getattr(settings, field)
    assert (got.get_secret_value() if isinstance(got, SecretStr) else str(got)) == value


def test_the_secret_variables_are_every_secret_and_the_database() -> None:
    secrets = {env_name(name) for name, info in Settings.model_fields.items() if info.annotation == SecretStr | None}
    assert set(file_variables()) == secrets | {"CONTACT_MCP_DB"}
    assert {"CONTACT_MCP_HTTP_TOKEN", "FEATUREBASE_IDENTITY_SECRET", "FEATHER_API_KEY"} <= secrets


def test_a_file_key_serves_a_provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("sk_from_file_1234\n")
    monkeypatch.setenv("CONTACT_MCP_PROVIDERS", "featurebase")
    monkeypatch.setenv("FEATUREBASE_API_KEY_FILE", str(tmp_path / "key"))
    assert load_settings().credentials("featurebase")[1] == "sk_from_file_1234"


def test_a_variable_and_its_file_both_set_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("token-in-the-file-abcdef")
    monkeypatch.setenv("CONTACT_MCP_HTTP_TOKEN", "token-in-the-environment")
    monkeypatch.setenv("CONTACT_MCP_HTTP_TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "CONTACT_MCP_HTTP_TOKEN and CONTACT_MCP_HTTP_TOKEN_FILE are both set" in message
    assert "token-in-the" not in message


@pytest.mark.parametrize(
    ("make", "says"),
    [
        pytest.param(lambda d: d / "missing", "No such file", id="missing"),
        pytest.param(lambda d: d, "Is a directory", id="directory"),
        pytest.param(lambda d: _written(d / "binary", b"\xff\xfe-not-utf8-secret"), "not UTF-8", id="not-text"),
        pytest.param(lambda d: _written(d / "big", b"secret-" * 20_000), "larger than", id="too-big"),
    ],
)
def test_an_unusable_file_is_a_config_error_naming_the_variable_not_the_content(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make: Callable[[Path], Path], says: str
) -> None:
    monkeypatch.setenv("FEATHER_API_KEY_FILE", str(make(tmp_path)))
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("FEATHER_API_KEY_FILE: ")
    assert says in message
    assert "secret" not in message


def _written(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.slow
def test_a_file_error_reaches_the_operator_as_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "contact_mcp", "doctor"],
        env={**os.environ, "CONTACT_MCP_HTTP_TOKEN_FILE": str(tmp_path / "nope")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "CONTACT_MCP_HTTP_TOKEN_FILE" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app:S3cr3t-pw@127.0.0.1:5432/appdb",  # SQLAlchemy's spelling
        "postgresql:/app:S3cr3t-pw@127.0.0.1/appdb",  # one slash lost
        "mysql://app:S3cr3t-pw@127.0.0.1/appdb",
    ],
)
def test_a_database_url_of_another_scheme_is_refused_without_its_password(url: str) -> None:
    # It used to select SQLite: a file named after the URL, a different one per replica, its password in the path.
    with pytest.raises(ConfigError) as raised:
        load_settings(db=url)
    assert "CONTACT_MCP_DB" in str(raised.value) and "postgresql://" in str(raised.value)
    assert "S3cr3t" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:S3cr@t-pw@127.0.0.1:1/appdb",  # libpq: password "S3cr", host "t-pw@127.0.0.1"
        "postgresql://app:S3cr/t-pw@127.0.0.1:1/appdb",  # libpq: host "app", port "S3cr"
        "postgresql://app:S3cr?x/t-pw@127.0.0.1:1/appdb",  # libpq: port "S3cr", query "x/t-pw@127.0.0.1:1/appdb"
        "postgresql://app:pw@127.0.0.1:1/appdb?application_name=S3cr@t-pw",  # a second "@"
    ],
)
def test_a_database_url_libpq_would_read_a_password_piece_of_as_a_host_is_refused_whole(url: str) -> None:
    # libpq ends the userinfo at the first "@" and the host at the first "/": it connected elsewhere, and its error
    # quoted the piece of the password it took for a host ("failed to resolve host 't-pw@127.0.0.1'").
    with pytest.raises(ConfigError) as raised:
        load_settings(db=url)
    assert "CONTACT_MCP_DB" in str(raised.value) and "%40" in str(raised.value)
    assert "S3cr" not in str(raised.value) and "t-pw" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:S3cr%40t-pw@127.0.0.1:1/appdb",
        "postgresql://app:S3cr?t#pw@127.0.0.1:1/appdb",  # libpq takes "?" and "#" as they are
        "postgresql://127.0.0.1:1/appdb?application_name=a%40b",
    ],
)
def test_a_database_url_whose_one_at_sign_ends_the_userinfo_is_accepted(url: str) -> None:
    assert load_settings(db=url).db == url


@pytest.mark.parametrize("path", ["contacts.db", "/var/lib/contacts.db", "C:\\contacts.db", "~/c.db"])
def test_a_database_path_is_still_a_sqlite_path(path: str) -> None:
    assert load_settings(db=path).db == path
