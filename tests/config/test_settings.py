import json
import tomllib
from pathlib import Path

import pytest

from config import ConfigError, Settings, load_settings
from config.loading import merge_chain
from config.settings import LEASE_MARGIN
from devtools.devstack import dev_chain, sandbox_providers
from tests.compose import ROOT

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

    assert "OTP_API_PORT: Input should be a valid integer" in str(error.value)
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


def test_route_policies_default_to_ordered_and_the_longest_prefix_wins() -> None:
    settings = chain(route_policies={"+9": {"policy": "adaptive"}, "+91": {"policy": "weighted", "weights": {"d7": 1}}})

    assert settings.route_policy("+919876543210").policy == "weighted"
    assert settings.route_policy("+971501234567").policy == "adaptive"
    assert settings.route_policy("+33612345678").policy == "ordered"


def test_route_policies_name_a_prefix_or_default_and_weights_only_configured_vendors() -> None:
    with pytest.raises(ValueError, match="not configured: nowhere"):
        chain(route_policies={"default": {"policy": "weighted", "weights": {"nowhere": 1}}})
    with pytest.raises(ValueError, match=r"route_policies\.91"):
        chain(route_policies={"91": {"policy": "adaptive"}})
    with pytest.raises(ValueError, match="a weighted route needs weights"):
        chain(route_policies={"+91": {"policy": "weighted"}})
    with pytest.raises(ValueError, match="conversion_wait must stay below window"):
        chain(routing={"window": 60, "conversion_wait": 60})


def with_config(monkeypatch: pytest.MonkeyPatch, path: Path, text: str) -> Path:
    path.write_text(text)
    monkeypatch.setenv("OTP_CONFIG_FILE", str(path))
    return path


def test_an_invalid_value_from_the_file_is_named_by_the_file_and_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = with_config(
        monkeypatch,
        tmp_path / "otp.toml",
        '[[providers]]\nname = "console"\nkind = "console"\nbase_url = "http://127.0.0.1:1"\n'
        '[[providers]]\nname = "d7"\nkind = "d7"\nbase_url = "http://127.0.0.1:1"\napi_token = "t"\ntimeout = 0\n',
    )

    with pytest.raises(ConfigError) as error:
        load_settings()

    assert str(error.value) == f"configuration error: {config}: providers[1].timeout: Input should be greater than 0"


def test_an_invalid_nested_variable_is_named_by_that_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_POLICY__EXPIRY", "5")

    with pytest.raises(ConfigError) as error:
        load_settings()

    assert str(error.value) == ("configuration error: OTP_POLICY__EXPIRY: Input should be greater than or equal to 30")


def test_an_invalid_provider_from_the_variable_is_named_by_the_variable_and_its_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTP_PROVIDERS", json.dumps([json.loads(D7) | {"attempts": 0}]))

    with pytest.raises(ConfigError, match=r"OTP_PROVIDERS: providers\[0\]\.attempts: Input should be greater"):
        load_settings()


def test_a_route_to_an_unknown_vendor_in_the_file_is_named_by_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = with_config(monkeypatch, tmp_path / "otp.toml", '[routes]\n"+91" = ["nowhere"]\n')

    with pytest.raises(ConfigError) as error:
        load_settings()

    assert str(error.value) == (
        f"configuration error: {config}: routes: routes name providers that are not configured: nowhere"
    )


def test_a_file_that_is_not_toml_is_named_with_the_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = with_config(monkeypatch, tmp_path / "otp.toml", "[[providers]\n")

    with pytest.raises(ConfigError, match=rf"^configuration error: {config}: .*\(at line 1, column \d+\)"):
        load_settings()


def test_a_variable_that_is_not_json_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_PROVIDERS", "[{")

    with pytest.raises(ConfigError, match=r"^configuration error: OTP_PROVIDERS: is not valid JSON"):
        load_settings()


def test_an_empty_chain_cannot_deliver() -> None:
    with pytest.raises(ConfigError, match=r"no provider chain is configured.*OTP_PROVIDERS.*OTP_CONFIG_FILE"):
        Settings().require_chain()


def test_a_chain_of_disabled_vendors_cannot_deliver() -> None:
    settings = Settings(providers=[json.loads(D7) | {"enabled": False}])

    with pytest.raises(ConfigError, match="every provider is disabled"):
        settings.require_chain()


BASE = [
    {"name": "d7", "kind": "d7", "base_url": "http://127.0.0.1:1", "api_token": "t"},
    {"name": "console", "kind": "console", "base_url": "http://127.0.0.1:1"},
]


def test_merging_an_entry_changes_only_the_fields_it_sets_in_place() -> None:
    chain, came_from = merge_chain(BASE, [{"name": "console", "timeout": 2.0}])

    assert chain == [BASE[0], BASE[1] | {"timeout": 2.0}]
    assert came_from == [None, 0]


def test_merging_an_entry_of_a_new_name_adds_it_at_the_end() -> None:
    extra = {"name": "extra", "kind": "console", "base_url": "http://127.0.0.1:2"}

    chain, came_from = merge_chain(BASE, [extra])

    assert chain == [*BASE, extra]
    assert came_from == [None, None, 0]


def test_with_the_dev_chain_a_file_of_routes_and_one_override_extends_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with_config(
        monkeypatch,
        tmp_path / "otp.toml",
        '[[providers]]\nname = "d7"\ntimeout = 2.0\n[routes]\n"+91" = ["messagecentral"]\n',
    )

    settings = load_settings(dev_chain)

    assert [provider.name for provider in settings.providers] == ["d7", "octopush", "messagecentral", "console"]
    assert settings.providers[0].timeout == 2.0
    assert settings.providers[0].api_token.get_secret_value() == sandbox_providers("")[0]["api_token"]
    assert settings.routes == {"+91": ("messagecentral",)}


def test_with_the_dev_chain_an_invalid_override_is_named_by_its_place_in_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = with_config(
        monkeypatch,
        tmp_path / "otp.toml",
        '[[providers]]\nname = "console"\n[[providers]]\nname = "d7"\ntimeout = -1\n',
    )

    with pytest.raises(ConfigError) as error:
        load_settings(dev_chain)

    assert str(error.value) == f"configuration error: {config}: providers[1].timeout: Input should be greater than 0"


def test_without_the_dev_chain_an_override_alone_is_an_incomplete_provider(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = with_config(monkeypatch, tmp_path / "otp.toml", '[[providers]]\nname = "d7"\ntimeout = 2.0\n')

    with pytest.raises(ConfigError, match=rf"^configuration error: {config}: providers\[0\]\.kind: Field required"):
        load_settings()


def test_the_shipped_production_example_is_a_valid_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_CONFIG_FILE", str(ROOT / "deploy" / "otp.example.toml"))

    settings = load_settings()

    assert [provider.name for provider in settings.providers] == ["d7", "octopush", "messagecentral"]
    assert all(provider.base_url.scheme == "https" for provider in settings.providers)


def test_the_shipped_sandbox_chain_is_the_dev_chain_at_the_compose_sandbox() -> None:
    shipped = tomllib.loads((ROOT / "deploy" / "otp.sandbox.toml").read_text())

    assert shipped["providers"] == sandbox_providers("http://sandbox:8090")


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
        "configuration error: OTP_VISIBILITY_TIMEOUT: 120 s must exceed the delivery lease (sum of provider"
        " timeouts + 5 s = 131 s) (lower the providers' timeout or raise OTP_VISIBILITY_TIMEOUT)"
    )


@pytest.mark.parametrize("variable", ["OTP_BUSY_RETRY_DELAY", "OTP_ERROR_RETRY_DELAY", "OTP_POSTBACK_RETRY_DELAY_MAX"])
def test_a_retry_delay_not_below_the_visibility_timeout_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("OTP_VISIBILITY_TIMEOUT", "30")
    monkeypatch.setenv(variable, "30")

    with pytest.raises(ConfigError, match=rf"^configuration error: {variable}: 30 s must stay below") as error:
        load_settings()

    assert "OTP_VISIBILITY_TIMEOUT (30 s)" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_vendor_retry_delay_max_not_below_the_visibility_timeout_is_refused_naming_the_vendor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "OTP_PROVIDERS", "[" + D7.replace('"api_token": "t"', '"api_token": "t", "retry_delay_max": 120') + "]"
    )

    with pytest.raises(ConfigError, match=r"OTP_PROVIDERS\[d7\]\.retry_delay_max: 120 s must stay below"):
        load_settings()


def test_timeouts_that_nest_tightly_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_PROVIDERS", slow_vendors(1, 1.0, retry_delay_max=6.9))
    monkeypatch.setenv("OTP_VISIBILITY_TIMEOUT", "7")
    for variable in ("OTP_BUSY_RETRY_DELAY", "OTP_ERROR_RETRY_DELAY", "OTP_POSTBACK_RETRY_DELAY_MAX"):
        monkeypatch.setenv(variable, "6.9")

    assert load_settings().delivery_lease == 6.0


def test_metrics_countries_come_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two countries in the variable
    monkeypatch.setenv("OTP_METRICS_COUNTRIES", "+44, +1876")

    # When the settings are loaded
    settings = load_settings()

    # Then those are the countries metrics name
    assert settings.metrics_countries == ("+44", "+1876")


def test_a_metrics_country_that_is_no_e164_prefix_fails_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a country written without its plus
    monkeypatch.setenv("OTP_METRICS_COUNTRIES", "44")

    # When the settings are loaded, then it fails naming the variable
    with pytest.raises(ConfigError, match="OTP_METRICS_COUNTRIES"):
        load_settings()


def test_a_number_counts_under_its_longest_configured_prefix_or_other() -> None:
    # Given +1 and +1876 (Jamaica) configured
    settings = Settings(metrics_countries=("+1", "+1876"))

    # When numbers are labelled, then the longest prefix wins, and an unlisted country is other
    assert settings.metrics_country("+18765551234") == "+1876"
    assert settings.metrics_country("+12025550123") == "+1"
    assert settings.metrics_country("+33612345678") == "other"
