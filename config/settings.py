"""The one settings object of the dispatcher, read from ``OTP_*`` variables and an optional TOML file.

Every process builds it once (``load_settings()``) and passes it into the factories. Nested values use
``__`` in variable names (``OTP_POLICY__EXPIRY=300``); the provider chain is easier to write in the TOML
file named by ``OTP_CONFIG_FILE`` (see README, "Configuration").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.errors import ConfigError
from config.policy import CountryPrefix, Limits, OtpPolicy
from config.providers import ProviderSettings
from config.redis import RedisEndpoint, RedisOptions, StoreRedisOptions, redis_options_problem, redis_url_problem
from config.routing import DEFAULT_POLICY, DEFAULT_ROUTE, RoutePolicy, RoutingSettings
from config.workflows import DEFAULT_WORKFLOW, LEGACY, LEGACY_WORKFLOW, Workflow, workflows_problem

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8080
DEFAULT_FLOWER_PORT = 5555
DEFAULT_SANDBOX_PORT = 8090
DEFAULT_DATA_DIR = Path(".otp-dispatcher")

DEFAULT_VISIBILITY_TIMEOUT = 120
DEFAULT_SWEEP_INTERVAL = 2.0
DEFAULT_BUSY_RETRY_DELAY = 2.0
DEFAULT_ERROR_RETRY_DELAY = 5.0
DEFAULT_POSTBACK_RETRY_DELAY = 10.0
DEFAULT_POSTBACK_RETRY_DELAY_MAX = 60.0
LEASE_MARGIN = 5.0
"""Seconds a delivery lease outlives the longest possible vendor calls of one run (its Redis round trips)."""
DEFAULT_JOB_BATCH = 200
DEFAULT_JOB_LINGER = 0.01
DEFAULT_REDIS_TIMEOUT = 1.0
DEFAULT_METRICS_COUNTRIES = ("+1", "+33", "+44", "+49", "+91")
"""The countries metrics name by default (the rest are ``other``)."""
OTHER_COUNTRY = "other"

CONFIG_FILE_VARIABLE = "OTP_CONFIG_FILE"
ENV_PREFIX = "OTP_"


class Settings(BaseSettings):
    """Everything a dispatcher process needs to know, validated once at start-up."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore", frozen=True)

    redis_url: str | None = None
    """Redis for the records (and the Celery broker, unless ``broker_url`` is set): ``redis://``, ``rediss://``
    (TLS), ``unix://`` (a socket) or ``sentinel://host:port,host:port/<db>`` (a Sentinel-managed primary)."""
    redis_timeout: float = Field(DEFAULT_REDIS_TIMEOUT, gt=0, le=30)
    redis: StoreRedisOptions = StoreRedisOptions()
    broker_url: str | None = None
    """A Redis of its own for the Celery broker (same schemes); unset: the broker is ``redis_url``'s Redis."""
    broker: RedisOptions | None = None
    """The broker's ``RedisOptions`` when ``broker_url`` is set (unset: the store's ``redis`` options)."""
    data_dir: Path = DEFAULT_DATA_DIR

    api_host: str = DEFAULT_API_HOST
    api_port: int = Field(DEFAULT_API_PORT, ge=1, le=65_535)
    api_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    api_url: str = ""
    """Where ``otp-dispatcher send/verify/status`` finds the API (default: ``http://<api_host>:<api_port>``)."""
    api_token: SecretStr = SecretStr("")
    """The token ``otp-dispatcher send/verify/status`` sends (default: the first of ``api_tokens``)."""

    secret_key: SecretStr = SecretStr("")

    flower_host: str = DEFAULT_API_HOST
    flower_port: int = Field(DEFAULT_FLOWER_PORT, ge=1, le=65_535)
    flower_user: str = "admin"
    flower_password: SecretStr = SecretStr("")

    sandbox_host: str = DEFAULT_API_HOST
    sandbox_port: int = Field(DEFAULT_SANDBOX_PORT, ge=1, le=65_535)

    policy: OtpPolicy = OtpPolicy()
    limits: Limits = Limits()
    providers: tuple[ProviderSettings, ...] = ()
    routes: dict[CountryPrefix, tuple[str, ...]] = {}
    """Per-country overrides: recipients with this E.164 prefix try these providers first, in order."""
    route_policies: dict[CountryPrefix | Literal["default"], RoutePolicy] = {}
    """How each route orders its vendors (``config/routing.py``), by E.164 prefix as ``routes`` (longest wins), or
    ``default`` for the numbers no prefix matches; a route named nowhere is ``ordered``."""
    routing: RoutingSettings = RoutingSettings()
    """The adaptive policy's window, conversion wait, exploration and floor."""
    route_groups: dict[str, tuple[str, ...]] = {}
    """Named lists of vendors a workflow step may name (``group``)."""
    workflows: dict[str, Workflow] = {}
    """Named workflows (``config/workflows.py``); ``default`` is every number's unless ``workflow_routes`` says."""
    workflow_routes: dict[CountryPrefix, str] = {}
    """Per-country workflows: numbers with this E.164 prefix follow this workflow (longest prefix wins)."""

    postback_secret: SecretStr = SecretStr("")
    """Signs postbacks (HMAC-SHA256); sends that ask for one are refused while it is unset."""
    postback_retry_delay: float = Field(DEFAULT_POSTBACK_RETRY_DELAY, gt=0, le=3600)
    """First delay before a failed postback is tried again; doubled each time, for up to 24 h..."""
    postback_retry_delay_max: float = Field(DEFAULT_POSTBACK_RETRY_DELAY_MAX, gt=0, le=3600)
    """...up to this many seconds."""

    callback_url: str = ""
    """The API's externally reachable base address (``https://otp.example.com``), where vendors post delivery
    receipts (``/callbacks/<vendor>/<secret>``); empty: vendors are given no callback and send no receipts."""

    log_format: Literal["json", "text"] = "json"
    """One JSON object per line, or plain text (``dev`` uses text)."""

    worker_metrics_port: int = Field(0, ge=0, le=65_535)
    """Port of a worker's Prometheus endpoint (0: none). Each worker process on a host needs its own."""
    worker_metrics_host: str = DEFAULT_API_HOST

    metrics_countries: Annotated[tuple[CountryPrefix, ...], NoDecode] = DEFAULT_METRICS_COUNTRIES
    """E.164 prefixes metrics label countries by (``OTP_METRICS_COUNTRIES=+1,+44``; longest prefix wins): a number
    matching none counts as ``other``, so the label set stays bounded."""
    worker_concurrency: int = Field(32, ge=1, le=1000)
    job_batch: int = Field(DEFAULT_JOB_BATCH, ge=1, le=1000)
    """OTPs one send job carries at most (sends that arrive while a job is being published wait for the
    next one); 1 publishes one Celery message per OTP."""
    job_linger: float = Field(DEFAULT_JOB_LINGER, ge=0, le=1)
    """Seconds between two publishes of one API process while it is busy: a send that finds the previous
    job published less than this ago waits the rest, with the sends arriving meanwhile (0: no wait)."""
    visibility_timeout: int = Field(DEFAULT_VISIBILITY_TIMEOUT, ge=2, le=86_400)
    """Seconds after which a job a worker took but never acknowledged (the worker was killed) is handed
    out again. Short is safe: a job handed out twice runs once (the store's job numbers). It must exceed
    the delivery lease and every retry delay (checked at start-up: ``_timeouts_nest``)."""
    sweep_interval: float = Field(DEFAULT_SWEEP_INTERVAL, gt=0, le=60)
    """Seconds between two sweeps for lost jobs (one worker process sweeps at a time); a job lost by the
    broker is queued again at most two intervals after it was due."""
    busy_retry_delay: float = Field(DEFAULT_BUSY_RETRY_DELAY, gt=0, le=3600)
    """Seconds before a send job looks again at an OTP another worker is sending."""
    error_retry_delay: float = Field(DEFAULT_ERROR_RETRY_DELAY, gt=0, le=3600)
    """Seconds before a send whose run failed unexpectedly (a Redis blip) runs again."""

    @field_validator("api_tokens", "metrics_countries", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(token.strip() for token in value.split(",") if token.strip())
        return value

    @field_validator("redis_url", "broker_url")
    @classmethod
    def _a_redis_url(cls, value: str | None) -> str | None:
        problem = None if value is None else redis_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("callback_url")
    @classmethod
    def _a_public_base_url(cls, value: str) -> str:
        if value and not (value.startswith(("http://", "https://")) and "?" not in value and "#" not in value):
            raise ValueError("must be an http:// or https:// base URL, without query or fragment")
        return value.rstrip("/")

    @field_validator("providers")
    @classmethod
    def _unique_provider_names(cls, value: tuple[ProviderSettings, ...]) -> tuple[ProviderSettings, ...]:
        names = [provider.name for provider in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"provider names must be unique, repeated: {', '.join(duplicates)}")
        return value

    @field_validator("routes")
    @classmethod
    def _routes_name_providers(
        cls, value: dict[str, tuple[str, ...]], info: ValidationInfo
    ) -> dict[str, tuple[str, ...]]:
        if "providers" not in info.data:  # the chain itself is invalid: that error is the one to read
            return value
        known = {provider.name for provider in info.data["providers"]}
        unknown = sorted({name for names in value.values() for name in names} - known)
        if unknown:
            raise ValueError(f"routes name providers that are not configured: {', '.join(unknown)}")
        return value

    @field_validator("route_policies")
    @classmethod
    def _policies_name_routes_and_providers(
        cls, value: dict[str, RoutePolicy], info: ValidationInfo
    ) -> dict[str, RoutePolicy]:
        if "providers" not in info.data:
            return value
        known = {provider.name for provider in info.data["providers"]}
        unknown = sorted({name for policy in value.values() for name in policy.weights} - known)
        if unknown:
            raise ValueError(f"weights name providers that are not configured: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _timeouts_nest(self) -> Settings:
        problem = nesting_problem(self)
        if problem:
            raise ConfigError(*problem)
        return self

    @model_validator(mode="after")
    def _workflows_fit(self) -> Settings:
        vendors = {provider.name for provider in self.providers}
        problem = workflows_problem(vendors, self.route_groups, self.workflows, self.workflow_routes)
        if problem:
            raise ConfigError(problem[0], problem[1], "fix the workflow configuration")
        return self

    def workflow_for(self, recipient: str) -> str:
        """The name of the workflow an OTP to ``recipient`` follows (``LEGACY_WORKFLOW`` when none is configured)."""
        prefixes = [prefix for prefix in self.workflow_routes if recipient.startswith(prefix)]
        if prefixes:
            return self.workflow_routes[max(prefixes, key=len)]
        return DEFAULT_WORKFLOW if DEFAULT_WORKFLOW in self.workflows else LEGACY_WORKFLOW

    def route_policy(self, recipient: str) -> RoutePolicy:
        """The policy of the route ``recipient`` follows: the longest prefix of ``route_policies`` it starts with,
        else ``default``'s, else ``ordered``."""
        prefixes = [key for key in self.route_policies if key != DEFAULT_ROUTE and recipient.startswith(key)]
        key = max(prefixes, key=len) if prefixes else DEFAULT_ROUTE
        return self.route_policies.get(key, DEFAULT_POLICY)

    def metrics_country(self, recipient: str) -> str:
        """The country metrics count ``recipient`` under: the longest of ``metrics_countries`` it starts with, or
        ``other``."""
        prefixes = [prefix for prefix in self.metrics_countries if recipient.startswith(prefix)]
        return max(prefixes, key=len) if prefixes else OTHER_COUNTRY

    def workflow(self, name: str) -> Workflow:
        """The workflow of that name; ``LEGACY`` (one step, no deadline) for a name no longer configured."""
        return self.workflows.get(name, LEGACY)

    @model_validator(mode="after")
    def _redis_options_fit(self) -> Settings:
        if self.broker is not None and self.broker_url is None:
            raise ConfigError("OTP_BROKER__*", "broker options are set without OTP_BROKER_URL", "set OTP_BROKER_URL")
        for prefix, endpoint in (("OTP_REDIS", self.store_redis), ("OTP_BROKER", self.broker_redis)):
            problem = None if endpoint is None else redis_options_problem(endpoint, prefix)
            if problem:
                raise ConfigError(*problem)
        if self.redis.wait_replicas and self.redis.wait_timeout >= self.redis_timeout:
            raise ConfigError(
                "OTP_REDIS__WAIT_TIMEOUT",
                f"{self.redis.wait_timeout:g} s must stay below OTP_REDIS_TIMEOUT ({self.redis_timeout:g} s)",
                "lower it or raise OTP_REDIS_TIMEOUT",
            )
        return self

    @property
    def store_redis(self) -> RedisEndpoint | None:
        """The Redis of the records, limits and breakers (None: ``redis_url`` is not set)."""
        return None if self.redis_url is None else RedisEndpoint(self.redis_url, self.redis, self.redis_timeout)

    @property
    def broker_redis(self) -> RedisEndpoint | None:
        """The Redis of the Celery broker: ``broker_url``'s, or the store's."""
        if self.broker_url is None:
            return self.store_redis
        return RedisEndpoint(self.broker_url, self.broker or RedisOptions(), self.redis_timeout)

    @property
    def enabled_providers(self) -> tuple[ProviderSettings, ...]:
        return tuple(provider for provider in self.providers if provider.enabled)

    @property
    def delivery_lease(self) -> float:
        """Seconds one delivery run may hold an OTP: every enabled vendor's timeout, plus ``LEASE_MARGIN``. So
        the lease outlasts any vendor request, and a run never outlives it."""
        return sum(provider.timeout for provider in self.enabled_providers) + LEASE_MARGIN

    @property
    def sandbox_url(self) -> str:
        return f"http://{self.sandbox_host}:{self.sandbox_port}"

    def require(self, *fields: str) -> None:
        """Stop with one clear line when a value this process cannot run without is missing."""
        for name in fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if not value:
                raise ConfigError(_variable(name), "is not set, and this process needs it", "set it")

    def require_chain(self) -> None:
        """Stop with one clear line when there is no enabled vendor to deliver through (a worker's need)."""
        if not self.enabled_providers:
            problem = "every provider is disabled" if self.providers else "no provider chain is configured"
            raise ConfigError(
                "providers",
                f"{problem}, and a worker delivers only through one",
                f"set {ENV_PREFIX}PROVIDERS, or add [[providers]] tables to the TOML file named by "
                f"{CONFIG_FILE_VARIABLE}",
            )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get(CONFIG_FILE_VARIABLE)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


def nesting_problem(settings: Settings) -> tuple[str, str, str] | None:
    """The first timeout that does not nest (as ``ConfigError``'s field, problem and fix), or None.

    Vendor request < delivery lease < visibility timeout, and every retry delay < visibility timeout: a
    job the broker hands out is acknowledged (its run over, its retry queued) before the broker would
    hand it out again. The lease is built from the vendor timeouts, so it always exceeds each of them.
    """
    visibility = settings.visibility_timeout
    lease = settings.delivery_lease
    if lease >= visibility:
        return (
            "OTP_VISIBILITY_TIMEOUT",
            f"{visibility} s must exceed the delivery lease (sum of provider timeouts + {LEASE_MARGIN:g} s"
            f" = {lease:g} s)",
            "lower the providers' timeout or raise OTP_VISIBILITY_TIMEOUT",
        )
    delays = [(f"OTP_PROVIDERS[{p.name}].retry_delay_max", p.retry_delay_max) for p in settings.enabled_providers]
    delays += [
        ("OTP_BUSY_RETRY_DELAY", settings.busy_retry_delay),
        ("OTP_SWEEP_INTERVAL", settings.sweep_interval),
        ("OTP_ERROR_RETRY_DELAY", settings.error_retry_delay),
        ("OTP_POSTBACK_RETRY_DELAY_MAX", settings.postback_retry_delay_max),
    ]
    for name, delay in delays:
        if delay >= visibility:
            return (
                name,
                f"{delay:g} s must stay below OTP_VISIBILITY_TIMEOUT ({visibility} s)",
                f"lower {name} or raise OTP_VISIBILITY_TIMEOUT",
            )
    return None


def _variable(field: str) -> str:
    return variable_of(field.split(".")[:1])


def variable_of(loc: Sequence[int | str]) -> str:
    """The ``OTP_*`` variable of the value at ``loc`` (``("policy", "expiry")``: ``OTP_POLICY__EXPIRY``)."""
    return ENV_PREFIX + "__".join(str(part) for part in loc).upper()
