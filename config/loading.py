"""Loading the settings: from the ``OTP_*`` variables and the TOML file, every invalid value turned into one
``ConfigError`` line naming where it came from (the variable, or the file and its key); and, for ``dev``, the
configured providers merged into a base chain.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import EnvSettingsSource, SettingsError, TomlConfigSettingsSource

from config.errors import ConfigError
from config.settings import CONFIG_FILE_VARIABLE, ENV_PREFIX, Settings, variable_of

BaseChain = Callable[[Settings], Sequence[Mapping[str, Any]]]
"""A provider chain the configured ``[[providers]]`` entries amend (``dev``: the sandbox chain), built from
the other settings (the sandbox's address)."""


def load_settings(base_chain: BaseChain | None = None) -> Settings:
    """Build the settings from the ``OTP_*`` variables and the TOML file, turning any invalid value into one
    ``ConfigError`` naming where it came from: the variable, or the file and its key.

    With ``base_chain``, the configured providers amend that chain (``merge_chain``) instead of being the
    whole chain, and routes may name its vendors.
    """
    config_file = os.environ.get(CONFIG_FILE_VARIABLE)
    if config_file and not Path(config_file).is_file():
        raise ConfigError(CONFIG_FILE_VARIABLE, f"names {config_file!r}, which is not a file", "fix the path")
    origins = _Origins.read(config_file)
    try:
        if base_chain is None:
            return Settings()
        # The other settings first, for the base chain: without the configured chain, and with every route
        # emptied (arguments merge into the file's and the variables' tables key by key), as routes may
        # name vendors that only the base chain has.
        others = Settings(providers=(), routes=dict.fromkeys(origins.configured_route_prefixes(), ()))
        chain, origins.chain_entries = merge_chain(base_chain(others), origins.configured_providers())
        return Settings(providers=chain)
    except ValidationError as exc:
        raise origins.error(exc.errors()[0]) from None


def merge_chain(base: Sequence[Mapping[str, Any]], entries: object) -> tuple[object, list[int | None] | None]:
    """``base`` amended by the configured ``entries``: an entry whose ``name`` is in ``base`` replaces only
    the fields it sets, in place; any other entry is added at the end. Also returns, for each provider of
    the result, the index of the configured entry it came from (None: ``base`` alone).

    Entries that are not a list of tables are returned as they are, for validation to refuse."""
    if not isinstance(entries, list) or not all(isinstance(entry, Mapping) for entry in entries):
        return entries, None
    chain = [dict(provider) for provider in base]
    came_from: list[int | None] = [None] * len(chain)
    position = {provider["name"]: index for index, provider in enumerate(chain)}
    for index, entry in enumerate(entries):
        if entry.get("name") in position:
            chain[position[entry["name"]]].update(entry)
            came_from[position[entry["name"]]] = index
        else:
            chain.append(dict(entry))
            came_from.append(index)
    return chain, came_from


class _Origins:
    """Where each configured value came from: a variable, a key of the TOML file, or neither (a default)."""

    def __init__(
        self, config_file: str | None, toml: dict[str, Any], environment: dict[str, Any], variables: set[str]
    ) -> None:
        self.config_file = config_file
        self.toml = toml
        self.environment = environment
        self.variables = variables
        self.chain_entries: list[int | None] | None = None
        """After ``merge_chain``: the configured entry each provider of the chain came from."""

    @classmethod
    def read(cls, config_file: str | None) -> _Origins:
        """Read each source on its own, stopping at one that cannot be read (TOML syntax, a variable that
        should hold JSON)."""
        variables = {name.upper() for name in os.environ if name.upper().startswith(ENV_PREFIX)}
        toml: dict[str, Any] = {}
        if config_file:
            try:
                toml = TomlConfigSettingsSource(Settings, toml_file=Path(config_file))()
            except ValueError as exc:  # tomllib's TOMLDecodeError, with the line and column
                raise ConfigError(config_file, str(exc).splitlines()[0], "fix the file") from None
        try:
            environment = EnvSettingsSource(Settings)()
        except SettingsError as exc:
            field = re.search(r'field "(\w+)"', str(exc))
            names = sorted(name for name in variables if field and name.startswith(variable_of([field.group(1)])))
            cause = str(exc.__cause__ or exc).splitlines()[0]
            raise ConfigError(" and ".join(names) or "settings", f"is not valid JSON: {cause}", "fix it") from None
        return cls(config_file, toml, environment, variables)

    def configured_providers(self) -> object:
        """The ``providers`` as configured: the variable's (which wins, as in ``Settings``) or the file's."""
        return self.environment.get("providers", self.toml.get("providers", []))

    def configured_route_prefixes(self) -> set[str]:
        return {prefix for routes in (self.environment, self.toml) for prefix in _table(routes.get("routes"))}

    def error(self, details: ErrorDetails) -> ConfigError:
        """The first validation error as one line naming the variable, or the file and key, to fix."""
        loc = tuple(part for part in details["loc"] if part != "[key]")
        problem = details["msg"].removeprefix("Value error, ")
        if not loc:
            where = f"{self.config_file} and the {ENV_PREFIX}* variables" if self.config_file else "settings"
            return ConfigError(where, problem)
        if loc[0] == "providers" and len(loc) > 1 and isinstance(loc[1], int) and self.chain_entries is not None:
            entry = self.chain_entries[loc[1]]
            if entry is None:
                return ConfigError(f"the dev chain's {_key(loc)}", problem)
            loc = ("providers", entry, *loc[2:])
        names = self._variables(loc)
        if names:
            covered = any(name == variable_of(loc) for name in names)
            return ConfigError(" and ".join(names) if covered else f"{names[0]}: {_key(loc)}", problem)
        if self.config_file and loc[0] in self.toml:
            return ConfigError(f"{self.config_file}: {_key(loc)}", problem)
        return ConfigError(variable_of(loc[:1]), problem)

    def _variables(self, loc: tuple[int | str, ...]) -> list[str]:
        """The variables that set the value at ``loc``: the one naming it or a part holding it
        (``OTP_PROVIDERS`` for ``providers.0.timeout``), else those naming values inside it."""
        for length in range(len(loc), 0, -1):
            if variable_of(loc[:length]) in self.variables:
                return [variable_of(loc[:length])]
        inside = variable_of(loc) + "__"
        return sorted(name for name in self.variables if name.startswith(inside))


def _table(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _key(loc: Sequence[int | str]) -> str:
    """``providers[0].timeout``, ``routes."+91"``: the key as the TOML file spells it."""
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            key += f".{name}" if key else name
    return key
