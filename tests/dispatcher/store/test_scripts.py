"""The Lua scripts name only fields the record declares, the record declares only fields in use, and every
script ships with the package."""

import re
import tomllib
from pathlib import Path

import pytest

from dispatcher.errors import ServiceUnavailable
from dispatcher.store import connect, record_script, redis_errors
from dispatcher.store.record import Field

ROOT = Path(__file__).resolve().parents[3]
STORE = ROOT / "dispatcher" / "store"
LUA_FIELD = re.compile(r"\bF\.([A-Za-z_]\w*)")
PYTHON_FIELD = re.compile(r"\bField\.([A-Z_]+)\b")
DECLARED = {field.value for field in Field}


def lua_fields() -> set[str]:
    """Every ``F.name`` of the store's scripts and of the scripts inline in the dispatcher's modules."""
    sources = [*STORE.rglob("*.lua"), *(ROOT / "dispatcher").rglob("*.py")]
    return {name for path in sources for name in LUA_FIELD.findall(path.read_text())}


def python_fields() -> set[str]:
    """Every ``Field.NAME`` the store's Python code uses (its declarations excluded)."""
    return {name.lower() for path in STORE.rglob("*.py") for name in PYTHON_FIELD.findall(path.read_text())}


def test_the_store_has_lua_scripts() -> None:
    assert len(list(STORE.rglob("*.lua"))) > 10


def test_every_field_a_script_touches_is_declared() -> None:
    assert lua_fields() - DECLARED == set()


def test_every_declared_field_is_used() -> None:
    assert DECLARED - lua_fields() - python_fields() == set()


def test_every_script_ships_with_the_package() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = {path for pattern in package_data["dispatcher.store"] for path in STORE.glob(pattern)}

    assert set(STORE.rglob("*.lua")) - shipped == set()


async def test_a_script_reading_an_undeclared_field_fails_rather_than_read_nothing(redis_url: str) -> None:
    redis = connect(redis_url, 1.0)
    script = record_script(redis, "return F.no_such_field")

    with pytest.raises(ServiceUnavailable):
        async with redis_errors():
            await script()

    await redis.aclose()
