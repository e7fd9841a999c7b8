import json
from pathlib import Path

import pytest

from config import ConfigError, Settings, load_settings
from config.settings import LEASE_MARGIN

D7 = '{"name": "d7", "kind": "d7", "base_url": "http://127.0.0.1:8090", "api_token": "t"}'


def test_comma_separated_tokens_become_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_API_TOKENS", "one, two")

    tokens = load_settings().api_tokens

    assert [token.get_secret_value() for token in tokens] == ["one", "two"]


def test_nested_policy_values_come_from_double_underscore_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_POLICY__EXPIRY", "300")

    assert load_settings().policy.expiry == 300


def test_policy_defaults_are_d7s(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = load_settings().policy

    assert (policy.expiry, policy.retry_delay, policy.retry_count, policy.otp_code_length) == (600, 60, 5, 6)
    assert (policy.otp_type, policy.max_wrong_attempts) == ("numeric", 5)


def test_the_provider_chain_comes_from_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "otp.toml"
    config.write_text(
        '[[providers]]\nname = "d7"\nkind = "d7"\nbase_url = "http://127.0.0.1:8090"\napi_token = "t"\n'
        '[[providers]]\nname = "console"\nkind = "console"\nbase_url = "http://127.0.0.1:8090"\nenabled = false\n'
    )
    monkeypatch.setenv("OTP_CONFIG_FILE", str(config))

    settings = load_settings()

    assert [p.name for p in settings.providers] == ["d7", "console"]
    assert [p.name for p in settings.enabled_providers] == ["d7"]


def test_an_invalid_value_is_one_line_naming_the_field_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_API_PORT", "eighty")

    with pytest.raises(ConfigError) as error:
        load_settings()

    assert "api_port" in str(error.value)
    assert "OTP_API_PORT" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_d7_provider_without_a_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_PROVIDERS", "[" + D7.replace('"api_token": "t"', '"enabled": true') + "]")

    with pytest.raises(ConfigError, match="api_token"):
        load_settings()


def test_a_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OTP_CONFIG_FILE", str(tmp_path / "missing.toml"))

    with pytest.raises(ConfigError, match="OTP_CONFIG_FILE"):
        load_settings()


def test_a_required_value_missing_at_start_is_named() -> None:
    with pytest.raises(ConfigError, match="OTP_SECRET_KEY"):
        load_settings().require("secret_key")


def chain(**extra: object) -> Settings:
    providers = [
        {"name": "d7", "kind": "d7", "base_url": "http://127.0.0.1:1", "api_token": "t"},
        {"name": "console", "kind": "console", "base_url": "http://127.0.0.1:1"},
        {"name": "india", "kind": "console", "base_url": "http://127.0.0.1:1", "countries": ["+91"]},
    ]
    return Settings.model_validate({"providers": providers, **extra})


def test_a_route_naming_an_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="not configured: nowhere"):
        chain(routes={"+91": ["nowhere"]})


def slow_vendors(count: int, timeout: float, retry_delay_max: float = 1.0) -> str:
    vendor = {
        "kind": "console",
        "base_url": "http://127.0.0.1:1",
        "timeout": timeout,
        "retry_delay_max": retry_delay_max,
    }
    vendors = [{"name": f"v{index}", **vendor} for index in range(count)]
    return json.dumps(vendors)


def test_the_delivery_lease_is_the_enabled_vendors_timeouts_plus_the_margin() -> None:
    settings = chain()

    assert settings.delivery_lease == sum(p.timeout for p in settings.enabled_providers) + LEASE_MARGIN


def test_the_default_timeouts_nest() -> None:
    settings = chain()

    assert settings.delivery_lease < settings.visibility_timeout


def test_a_visibility_timeout_the_delivery_lease_outlasts_is_one_line_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTP_PROVIDERS", slow_vendors(3, 42.0))

    with pytest.raises(ConfigError) as error:
        load_settings()

    assert str(error.value) == (
        "configuration error: OTP_VISIBILITY_TIMEOUT (120 s) must exceed the delivery lease (sum of provider"
        " timeouts + 5 s = 131 s) (lower the providers' timeout or raise OTP_VISIBILITY_TIMEOUT)"
    )


@pytest.mark.parametrize("variable", ["OTP_BUSY_RETRY_DELAY", "OTP_ERROR_RETRY_DELAY", "OTP_POSTBACK_RETRY_DELAY_MAX"])
def test_a_retry_delay_not_below_the_visibility_timeout_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("OTP_VISIBILITY_TIMEOUT", "30")
    monkeypatch.setenv(variable, "30")

    with pytest.raises(ConfigError, match=rf"^configuration error: {variable} \(30 s\) must stay below") as error:
        load_settings()

    assert "OTP_VISIBILITY_TIMEOUT (30 s)" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_vendor_retry_delay_max_not_below_the_visibility_timeout_is_refused_naming_the_vendor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "OTP_PROVIDERS", "[" + D7.replace('"api_token": "t"', '"api_token": "t", "retry_delay_max": 120') + "]"
    )

    with pytest.raises(ConfigError, match=r"OTP_PROVIDERS\[d7\]\.retry_delay_max \(120 s\) must stay below"):
        load_settings()


def test_timeouts_that_nest_tightly_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_PROVIDERS", slow_vendors(1, 1.0, retry_delay_max=6.9))
    monkeypatch.setenv("OTP_VISIBILITY_TIMEOUT", "7")
    for variable in ("OTP_BUSY_RETRY_DELAY", "OTP_ERROR_RETRY_DELAY", "OTP_POSTBACK_RETRY_DELAY_MAX"):
        monkeypatch.setenv(variable, "6.9")

    assert load_settings().delivery_lease == 6.0
