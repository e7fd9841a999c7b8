"""docker-compose.yml cannot be run here (no Docker engine), so it is checked by reading it."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import build_parser
from config import Settings

ROOT = Path(__file__).parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OURS = {name: service for name, service in COMPOSE["services"].items() if service.get("image", "").startswith("otp-")}


def test_every_process_of_the_stack_is_a_service() -> None:
    assert set(COMPOSE["services"]) == {"redis", "api", "worker", "flower", "sandbox"}
    assert set(OURS) == {"api", "worker", "flower", "sandbox"}


@pytest.mark.parametrize("name", sorted(OURS))
def test_each_command_is_a_valid_otp_dispatcher_command(name: str) -> None:
    command = OURS[name]["command"]

    assert build_parser().parse_args(command).command == command[0]


@pytest.mark.parametrize("name", sorted(OURS))
def test_each_variable_names_a_setting(name: str) -> None:
    fields = set(Settings.model_fields)
    variables = {key for key in OURS[name]["environment"] if key.startswith("OTP_")} - {"OTP_CONFIG_FILE"}

    assert {key.removeprefix("OTP_").lower() for key in variables} <= fields


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


def test_secrets_must_be_given_not_defaulted() -> None:
    environment = OURS["api"]["environment"]

    assert environment["OTP_SECRET_KEY"].startswith("${OTP_SECRET_KEY:?")
    assert environment["OTP_API_TOKENS"].startswith("${OTP_API_TOKENS:?")
