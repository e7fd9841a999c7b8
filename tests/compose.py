"""docker-compose.yml as the tests read it: the file, and its values with ``${...}`` substituted as compose
substitutes them from ``.env`` (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<kind>[-?])(?P<word>[^}]*))?\}")


def load_compose() -> dict[str, Any]:
    """The compose file, its anchors and ``<<`` merges resolved (as ``docker compose config`` does)."""
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return compose


def required_variables() -> set[str]:
    """The variables compose refuses to start without (``${NAME:?message}``)."""
    return {match["name"] for match in VARIABLE.finditer(COMPOSE_FILE.read_text()) if match["kind"] == "?"}


def interpolate(value: str, dotenv: dict[str, str]) -> str:
    """``value`` with ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}`` substituted from ``dotenv``,
    and ``$$`` as ``$``; a required variable that is unset or empty raises, as compose stops."""

    def substitute(match: re.Match[str]) -> str:
        given = dotenv.get(match["name"], "")
        if given:
            return given
        if match["kind"] == "?":
            raise KeyError(f"compose would stop: {match['word']}")
        return match["word"] if match["kind"] == "-" else ""

    return VARIABLE.sub(substitute, value).replace("$$", "$")


def service_environment(service: dict[str, Any], dotenv: dict[str, str]) -> dict[str, str]:
    """A service's ``environment``, as its container would get it."""
    return {name: interpolate(str(value), dotenv) for name, value in service.get("environment", {}).items()}


def mounts(service: dict[str, Any], dotenv: dict[str, str]) -> dict[str, Path]:
    """A service's bind mounts of files of the repository: target path in the container -> file here."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = interpolate(volume, dotenv).split(":")
        if source.startswith("."):
            found[target] = (ROOT / source).resolve()
    return found
