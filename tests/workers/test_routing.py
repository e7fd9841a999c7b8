"""Routing: the vendors a send tries, in order."""

from config import ProviderSettings, Settings
from workers.routing import route


def chain(**extra: object) -> Settings:
    providers = [
        {"name": "d7", "kind": "d7", "base_url": "http://127.0.0.1:1", "api_token": "t"},
        {"name": "console", "kind": "console", "base_url": "http://127.0.0.1:1"},
        {"name": "india", "kind": "console", "base_url": "http://127.0.0.1:1", "countries": ["+91"]},
    ]
    return Settings.model_validate({"providers": providers, **extra})


def names(providers: tuple[ProviderSettings, ...]) -> list[str]:
    return [provider.name for provider in providers]


def test_the_route_is_the_chain_without_vendors_that_do_not_serve_the_country() -> None:
    assert names(route(chain(), "+33612345678")) == ["d7", "console"]


def test_a_country_route_puts_its_vendors_first() -> None:
    settings = chain(routes={"+91": ["india"], "+9198": ["console"]})

    assert names(route(settings, "+919012345678")) == ["india", "d7", "console"]
    assert names(route(settings, "+919812345678")) == ["console", "d7", "india"]


def test_the_vendor_that_delivered_last_leads_a_resend() -> None:
    assert names(route(chain(), "+33612345678", first="console")) == ["console", "d7"]


def test_a_disabled_vendor_is_not_routed_to() -> None:
    settings = Settings.model_validate(
        {"providers": [{"name": "c", "kind": "console", "base_url": "http://127.0.0.1:1", "enabled": False}]}
    )

    assert route(settings, "+33612345678") == ()
