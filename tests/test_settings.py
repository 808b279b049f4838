"""Settings: the environment read once; bad values are start-up errors that name the variable, never its value."""

from __future__ import annotations

import pytest

from contact_mcp import ConfigError, load_settings
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
