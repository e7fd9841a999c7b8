"""Reaching Redis, as the settings describe it (``config/redis.py``): URLs of each scheme, Sentinel, TLS, ACL
credentials, replicas to wait for, and a broker of its own; each mistake stops loading with one line naming the
variable."""

from pathlib import Path

import pytest

from config import ConfigError, load_settings
from config.redis import redis_url_problem


@pytest.mark.parametrize(
    "url",
    [
        "notaurl",
        "http://x",
        "redis://host:notaport",
        "redis://host:70000",
        "redis:///0",
        "redis://h/x",
        "unix://",
        "sentinel://",
        "sentinel://s1:26379,,s2/0",
        "sentinel://s1:notaport/0",
        "sentinel://:pw@s1:26379/0",
        "sentinel://s1:26379/mymaster",
    ],
)
def test_a_bad_redis_url_stops_loading_naming_the_variable(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("OTP_REDIS_URL", url)

    with pytest.raises(ConfigError, match=r"^configuration error: OTP_REDIS_URL: "):
        load_settings()


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "redis://:pw@redis",
        "rediss://user:pw@cache.example:6380/2",
        "unix:///run/r.sock",
        "sentinel://s1:26379,s2:26379,s3/1",
    ],
)
def test_redis_urls_of_each_scheme_are_accepted(url: str) -> None:
    assert redis_url_problem(url) is None


def one_line_error(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "\n" not in str(raised.value)
    return str(raised.value)


def test_sentinels_without_the_master_name_stop_loading_naming_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    error = one_line_error(monkeypatch, OTP_REDIS_URL="sentinel://s1:26379,s2:26379/0")

    assert error.startswith(
        "configuration error: OTP_REDIS__MASTER_NAME: is not set, and OTP_REDIS_URL names sentinels"
    )


def test_a_sentinel_deployment_is_its_addresses_database_and_master_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_REDIS_URL", "sentinel://s1:26380,s2/3")
    monkeypatch.setenv("OTP_REDIS__MASTER_NAME", "otp")
    monkeypatch.setenv("OTP_REDIS__PASSWORD", "pw")

    endpoint = load_settings().store_redis

    assert endpoint is not None
    assert (endpoint.sentinels, endpoint.database) == ((("s1", 26380), ("s2", 26379)), 3)
    assert (endpoint.options.master_name, endpoint.options.password.get_secret_value()) == ("otp", "pw")


def test_a_master_name_without_sentinels_stops_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    error = one_line_error(monkeypatch, OTP_REDIS_URL="redis://r:6379/0", OTP_REDIS__MASTER_NAME="otp")

    assert error.startswith("configuration error: OTP_REDIS__MASTER_NAME: is set, but OTP_REDIS_URL is not a sentinel")


def test_tls_files_without_rediss_stop_loading(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("ca")
    error = one_line_error(monkeypatch, OTP_REDIS_URL="redis://r/0", OTP_REDIS__CA_FILE=str(tmp_path / "ca.pem"))

    assert error.startswith("configuration error: OTP_REDIS__CA_FILE: is set, but OTP_REDIS_URL is not a rediss://")


def test_a_tls_file_that_is_not_there_stops_loading_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    error = one_line_error(monkeypatch, OTP_REDIS_URL="rediss://r/0", OTP_REDIS__CA_FILE=str(missing))

    assert (
        error == f"configuration error: OTP_REDIS__CA_FILE: names {str(missing)!r}, which is not a file (fix the path)"
    )


def test_a_client_certificate_without_its_key_stops_loading(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("cert")
    error = one_line_error(monkeypatch, OTP_REDIS_URL="rediss://r/0", OTP_REDIS__CERT_FILE=str(tmp_path / "cert.pem"))

    assert error.startswith("configuration error: OTP_REDIS__CERT_FILE: and KEY_FILE go together")


def test_a_password_in_both_the_url_and_the_section_stops_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    error = one_line_error(monkeypatch, OTP_REDIS_URL="redis://:pw@r/0", OTP_REDIS__PASSWORD="other")

    assert error.startswith("configuration error: OTP_REDIS__PASSWORD: is set and OTP_REDIS_URL holds credentials")


def test_a_wait_for_replicas_longer_than_the_redis_timeout_stops_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    error = one_line_error(
        monkeypatch, OTP_REDIS_URL="redis://r/0", OTP_REDIS__WAIT_REPLICAS="1", OTP_REDIS__WAIT_TIMEOUT="1.5"
    )

    assert error.startswith("configuration error: OTP_REDIS__WAIT_TIMEOUT: 1.5 s must stay below OTP_REDIS_TIMEOUT")


def test_broker_options_without_a_broker_url_stop_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    error = one_line_error(monkeypatch, OTP_REDIS_URL="redis://r/0", OTP_BROKER__USERNAME="jobs")

    assert error.startswith("configuration error: OTP_BROKER__*: broker options are set without OTP_BROKER_URL")


def test_the_broker_is_the_stores_redis_unless_its_own_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTP_REDIS_URL", "redis://store/0")
    shared = load_settings()
    monkeypatch.setenv("OTP_BROKER_URL", "sentinel://q1,q2/0")
    monkeypatch.setenv("OTP_BROKER__MASTER_NAME", "jobs")
    split = load_settings()

    assert shared.broker_redis == shared.store_redis
    assert split.broker_redis is not None
    assert (split.broker_redis.url, split.broker_redis.options.master_name) == ("sentinel://q1,q2/0", "jobs")


def test_the_redis_section_comes_from_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "otp.toml"
    config.write_text('redis_url = "sentinel://s1,s2,s3/0"\n[redis]\nmaster_name = "otp"\nwait_replicas = 1\n')
    monkeypatch.setenv("OTP_CONFIG_FILE", str(config))

    settings = load_settings()

    assert (settings.redis.master_name, settings.redis.wait_replicas) == ("otp", 1)
