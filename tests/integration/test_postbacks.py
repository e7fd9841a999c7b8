"""Postbacks: a signed event to success_url / failure_url once a send is final, retried until taken."""

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from config import Settings
from dispatcher.app import create_app
from tests.support import POSTBACK_SECRET, Api, Stack, random_number, wait_for
from workers.postbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


class Receiver:
    """A service's postback endpoint: answers the statuses queued in ``answers``, then 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.answers.pop(0) if self.answers else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    endpoint = Receiver()
    app = web.Application()
    app.router.add_post("/hook", endpoint.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield endpoint, str(server.make_url("/hook"))
    await server.close()


async def events(endpoint: Receiver, count: int) -> list[tuple[dict[str, str], dict[str, Any]]]:
    async def arrived() -> list[tuple[dict[str, str], dict[str, Any]]] | None:
        if len(endpoint.received) < count:
            return None
        return [(headers, json.loads(body)) for headers, body in endpoint.received]

    result: list[tuple[dict[str, str], dict[str, Any]]] = await wait_for(arrived)
    return result


async def test_a_delivered_otp_posts_a_signed_event_to_its_success_url(
    api: Api, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    recipient = random_number()
    otp_id = await api.send(recipient=recipient, success_url=url, failure_url=url + "?failed")

    [(headers, event)] = await events(endpoint, 1)

    body = endpoint.received[0][1]
    assert headers[SIGNATURE_HEADER] == sign(POSTBACK_SECRET, headers[TIMESTAMP_HEADER], body)
    assert (event["event"], event["otp_id"], event["delivered_by"]) == ("DELIVERED", otp_id, "d7")
    assert [a["outcome"] for a in event["attempts"]] == ["DELIVERED"]
    assert recipient[1:] not in body.decode()
    assert (await api.inbox(recipient))["code"] not in body.decode()


async def test_a_postback_the_receiver_refuses_is_tried_again(api: Api, receiver: tuple[Receiver, str]) -> None:
    endpoint, url = receiver
    endpoint.answers = [500, 503]

    await api.send(success_url=url)
    received = await events(endpoint, 3)

    assert [event["event"] for _, event in received] == ["DELIVERED"] * 3


async def test_a_failed_otp_posts_to_its_failure_url(api: Api, receiver: tuple[Receiver, str]) -> None:
    endpoint, url = receiver
    await api.fault("d7", status=422)

    otp_id = await api.send(success_url=url + "?ok", failure_url=url)
    [(_, event)] = await events(endpoint, 1)

    assert (event["event"], event["otp_id"], event["status"]) == ("FAILED", otp_id, "FAILED")
    assert event["failure_reason"].startswith("rejected by d7")


async def test_a_postback_asked_of_a_dispatcher_without_a_postback_secret_is_422(stack: Stack) -> None:
    token = "no-postbacks-token"
    settings = Settings.model_validate(stack.settings.model_dump() | {"postback_secret": "", "api_tokens": token})
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    body = {"recipient": random_number(), "content": "Code {}", "success_url": "http://127.0.0.1:1/hook"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            str(server.make_url("/verify/v1/otp/send-otp")), json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        answer = await response.json()
    await server.close()

    assert response.status == 422
    assert answer["detail"][0]["loc"] == ["body", "success_url"]
