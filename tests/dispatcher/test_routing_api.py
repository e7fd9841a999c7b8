"""The routing override routes: pin or ban a vendor for a country (and channel), in Redis, behind the API token."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

from dispatcher.constants import ROUTING_OVERRIDES_KEY
from tests.dispatcher.conftest import LocalApi, LocalApiFactory

PROVIDERS = [
    {"name": "d7", "kind": "d7", "base_url": "http://127.0.0.1:1", "api_token": "t"},
    {"name": "octopush", "kind": "octopush", "base_url": "http://127.0.0.1:1", "login": "l", "password": "p"},
]
OVERRIDE = "/routing/v1/overrides/+33/d7"


@pytest.fixture
async def api(start_local_api: LocalApiFactory, broker: redis.Redis) -> AsyncIterator[LocalApi]:
    broker.delete(ROUTING_OVERRIDES_KEY)
    yield await start_local_api(providers=PROVIDERS)
    broker.delete(ROUTING_OVERRIDES_KEY)


async def call(api: LocalApi, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    sent = {"json": body} if body is not None else {}
    async with api.session.request(method, api.url + path, headers=headers or api.headers, **sent) as response:
        return response.status, await response.json()


async def test_a_pin_is_stored_and_listed(api: LocalApi, broker: redis.Redis) -> None:
    status, body = await call(api, "PUT", OVERRIDE, {"action": "PIN", "channel": "sms"})

    assert (status, body) == (200, {"country": "+33", "channel": "SMS", "vendor": "d7", "action": "PIN"})
    assert broker.hgetall(ROUTING_OVERRIDES_KEY) == {"+33|SMS|d7": "PIN"}
    assert await call(api, "GET", "/routing/v1/overrides") == (200, {"overrides": [body]})


async def test_a_ban_without_a_channel_holds_on_every_channel_and_replaces_a_pin(
    api: LocalApi, broker: redis.Redis
) -> None:
    await call(api, "PUT", OVERRIDE, {"action": "PIN"})

    status, body = await call(api, "PUT", OVERRIDE, {"action": "BAN"})

    assert (status, body["channel"], body["action"]) == (200, "*", "BAN")
    assert broker.hgetall(ROUTING_OVERRIDES_KEY) == {"+33|*|d7": "BAN"}


async def test_delete_lifts_the_override_of_its_channel_only(api: LocalApi, broker: redis.Redis) -> None:
    await call(api, "PUT", OVERRIDE, {"action": "BAN"})
    await call(api, "PUT", OVERRIDE, {"action": "PIN", "channel": "WhatsApp"})

    status, body = await call(api, "DELETE", OVERRIDE + "?channel=WhatsApp")

    assert status == 200
    assert body == {"overrides": [{"country": "+33", "channel": "*", "vendor": "d7", "action": "BAN"}]}
    assert broker.hgetall(ROUTING_OVERRIDES_KEY) == {"+33|*|d7": "BAN"}


async def test_deleting_an_override_that_is_not_set_is_a_404(api: LocalApi) -> None:
    status, body = await call(api, "DELETE", OVERRIDE)

    assert status == 404
    assert body["detail"]["code"] == "OVERRIDE_NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/routing/v1/overrides", None), ("PUT", OVERRIDE, {"action": "PIN"}), ("DELETE", OVERRIDE, None)],
)
async def test_every_override_route_asks_for_the_token(
    api: LocalApi, broker: redis.Redis, method: str, path: str, body: Any
) -> None:
    status, answer = await call(api, method, path, body, Authorization="Bearer wrong")

    assert status == 401
    assert answer["detail"]["code"] == "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED"
    assert broker.hgetall(ROUTING_OVERRIDES_KEY) == {}


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        (OVERRIDE, {"action": "PREFER"}, ["body", "action"]),
        (OVERRIDE, {"action": "PIN", "channel": "fax"}, ["body", "channel"]),
        (OVERRIDE, {"action": "PIN", "extra": 1}, ["body", "extra"]),
        ("/routing/v1/overrides/33/d7", {"action": "PIN"}, ["path", "country"]),
        ("/routing/v1/overrides/+7/d7", {"action": "PIN"}, ["path", "country"]),
        ("/routing/v1/overrides/+33/D7", {"action": "PIN"}, ["path", "vendor"]),
        ("/routing/v1/overrides/+33/messagecentral", {"action": "PIN"}, ["path", "vendor"]),
    ],
)
async def test_bad_input_gets_d7s_422_list_naming_it(
    api: LocalApi, broker: redis.Redis, path: str, body: Any, loc: list[str]
) -> None:
    status, answer = await call(api, "PUT", path, body)

    assert status == 422
    assert [item["loc"] for item in answer["detail"]] == [loc]
    assert all(set(item) == {"loc", "msg", "type"} for item in answer["detail"])
    assert broker.hgetall(ROUTING_OVERRIDES_KEY) == {}


async def test_a_bad_channel_in_the_delete_query_is_a_422(api: LocalApi) -> None:
    status, answer = await call(api, "DELETE", OVERRIDE + "?channel=fax")

    assert status == 422
    assert [item["loc"] for item in answer["detail"]] == [["query", "channel"]]
