"""How the dispatcher reaches a Redis deployment: the options beyond its URL (Sentinel, ACL user, TLS, WAIT),
and the one-line problems a URL or an option can have (checked when the settings load).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DEFAULT_WAIT_TIMEOUT = 0.5
DEFAULT_SENTINEL_PORT = 26379
REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")


class RedisOptions(BaseModel):
    """How to reach one Redis deployment, beyond its URL: the Sentinel-managed primary's name, the ACL user,
    the TLS files. ``[redis]`` (``OTP_REDIS__*``) for the store; ``[broker]`` (``OTP_BROKER__*``) for a broker
    of its own (README, "Scaling out")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    master_name: str = ""
    """With a ``sentinel://`` URL: the name the sentinels monitor the primary under (``sentinel monitor <name>``)."""
    sentinel_password: SecretStr = SecretStr("")
    """With a ``sentinel://`` URL: the sentinels' own ``requirepass``, if they have one."""
    username: str = ""
    """The Redis ACL user (``ACL SETUSER``); empty: ``default``."""
    password: SecretStr = SecretStr("")
    """The ACL user's password (or ``requirepass``)."""
    ca_file: Path | None = None
    """With ``rediss://``: the CA certificate the server's certificate must chain to (default: the system's)."""
    cert_file: Path | None = None
    """With ``rediss://``: this client's certificate, for a server that asks for one (``tls-auth-clients``)..."""
    key_file: Path | None = None
    """...and its private key."""


class StoreRedisOptions(RedisOptions):
    """The store's Redis: ``RedisOptions`` plus how sure a write must be before the API answers."""

    wait_replicas: int = Field(0, ge=0, le=16)
    """Replicas that must confirm the OTP record and its job, and each verify's outcome, before the API
    answers (Redis ``WAIT``); unconfirmed within ``wait_timeout``, the API answers 503. 0: do not wait."""
    wait_timeout: float = Field(DEFAULT_WAIT_TIMEOUT, gt=0, le=10)
    """Seconds the replicas have to confirm; must stay below ``OTP_REDIS_TIMEOUT``."""


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """One Redis deployment as every client of it is built from: its URL, options and command timeout."""

    url: str
    options: RedisOptions
    timeout: float

    @property
    def sentinels(self) -> tuple[tuple[str, int], ...]:
        """The sentinels' addresses of a ``sentinel://`` URL (empty for any other scheme)."""
        parts = urlsplit(self.url)
        if parts.scheme != "sentinel":
            return ()
        return tuple(_address(item) for item in parts.netloc.rpartition("@")[2].split(","))

    @property
    def database(self) -> int:
        return int(urlsplit(self.url).path.strip("/") or 0)


def redis_url_problem(url: str) -> str | None:
    """Why ``url`` is not an address of Redis that both the records and the broker can use, or None."""
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        return "must start with redis://, rediss://, unix:// or sentinel:// (e.g. redis://localhost:6379/0)"
    if parts.scheme == "unix":
        return None if parts.path else "must name the socket's path (e.g. unix:///run/redis/redis.sock)"
    if parts.scheme == "sentinel":
        return _sentinel_url_problem(parts)
    return _redis_host_problem(parts)


SENTINEL_EXAMPLE = "e.g. sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/0"


def _sentinel_url_problem(parts: SplitResult) -> str | None:
    if "@" in parts.netloc:
        return "must not hold credentials: set OTP_REDIS__USERNAME and OTP_REDIS__PASSWORD (or OTP_BROKER__*)"
    for item in parts.netloc.split(","):
        problem = _redis_host_problem(urlsplit(f"redis://{item}"))
        if problem or not item:
            return f"must list the sentinels as host:port, separated by commas ({SENTINEL_EXAMPLE})"
    database = parts.path.strip("/")
    if (database and not database.isdigit()) or parts.query:
        return f"must end with a database number, if any ({SENTINEL_EXAMPLE})"
    return None


def _address(item: str) -> tuple[str, int]:
    parts = urlsplit(f"redis://{item}")
    return str(parts.hostname), parts.port or DEFAULT_SENTINEL_PORT


def redis_options_problem(endpoint: RedisEndpoint, prefix: str) -> tuple[str, str, str] | None:
    """The first option that does not fit the endpoint's URL (as ``ConfigError``'s field, problem and fix), or
    None. ``prefix``: the variables' (``OTP_REDIS`` or ``OTP_BROKER``)."""
    options, scheme = endpoint.options, urlsplit(endpoint.url).scheme
    url = f"{prefix}_URL"
    if scheme == "sentinel" and not options.master_name:
        return (f"{prefix}__MASTER_NAME", f"is not set, and {url} names sentinels", "set it to the monitored name")
    if scheme != "sentinel":
        for name in ("master_name", "sentinel_password"):
            if _is_set(getattr(options, name)):
                return (f"{prefix}__{name.upper()}", f"is set, but {url} is not a sentinel:// URL", "unset it")
    if scheme != "rediss":
        for name in ("ca_file", "cert_file", "key_file"):
            if getattr(options, name) is not None:
                return (f"{prefix}__{name.upper()}", f"is set, but {url} is not a rediss:// URL", "use rediss://")
    if (options.cert_file is None) != (options.key_file is None):
        return (f"{prefix}__CERT_FILE", "and KEY_FILE go together: set both or neither", "set both")
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(options, name)
        if path is not None and not path.is_file():
            return (f"{prefix}__{name.upper()}", f"names {str(path)!r}, which is not a file", "fix the path")
    has_credentials = bool(urlsplit(endpoint.url).password or urlsplit(endpoint.url).username)
    if has_credentials and (options.username or options.password.get_secret_value()):
        return (f"{prefix}__PASSWORD", f"is set and {url} holds credentials too", "set them in one place")
    return None


def _is_set(value: object) -> bool:
    return bool(value.get_secret_value() if isinstance(value, SecretStr) else value)


def _redis_host_problem(parts: SplitResult) -> str | None:
    try:
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError:
        return "has a port that is not a number from 1 to 65535 (e.g. redis://localhost:6379/0)"
    if not parts.hostname:
        return "must name a host (e.g. redis://localhost:6379/0)"
    database = parts.path.strip("/")
    if database and not database.isdigit():
        return "must end with a database number, if any (e.g. redis://localhost:6379/0)"
    return None
