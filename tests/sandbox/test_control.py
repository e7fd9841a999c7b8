"""The sandbox's own routes: inbox, faults, counters, reset."""

import json
import time

import aiohttp
import pytest

from sandbox.faults import HTML_ERROR_PAGE
from tests.sandbox.conftest import D7_AUTH, OCTOPUSH_AUTH, Sandbox
from tests.support import wait_for

SEND = "/verify/v1/otp/send-otp"
BODY = {"recipient": "+33612345678", "content": "Code {}"}


async def test_an_empty_inbox_is_404(sandbox: Sandbox) -> None:
    assert (await sandbox.request("GET", "/inbox/+33600000000"))[0] == 404


async def test_a_dropped_message_is_the_last_in_the_inbox(sandbox: Sandbox) -> None:
    await sandbox.request(
        "POST", "/inbox/+33612345678", json={"vendor": "console", "text": "Code 1234", "code": "1234"}
    )

    status, message = await sandbox.request("GET", "/inbox/+33612345678")

    assert status == 200
    assert (message["vendor"], message["text"], message["code"]) == ("console", "Code 1234", "1234")


async def test_a_dropped_message_without_its_fields_is_400(sandbox: Sandbox) -> None:
    assert (await sandbox.request("POST", "/inbox/+33612345678", json={"vendor": "x"}))[0] == 400


async def test_faults_for_an_unknown_vendor_are_404(sandbox: Sandbox) -> None:
    assert (await sandbox.request("PUT", "/_sandbox/faults/nobody", json={}))[0] == 404


async def test_invalid_faults_are_400(sandbox: Sandbox) -> None:
    assert (await sandbox.request("PUT", "/_sandbox/faults/d7", json={"status": 200}))[0] == 400


async def test_an_injected_status_answers_every_call(sandbox: Sandbox) -> None:
    await sandbox.fault("d7", status=503)

    assert (await sandbox.request("POST", SEND, json=BODY, headers=D7_AUTH))[0] == 503


async def test_an_error_rate_of_zero_injects_nothing(sandbox: Sandbox) -> None:
    await sandbox.fault("d7", status=503, error_rate=0)

    assert (await sandbox.request("POST", SEND, json=BODY, headers=D7_AUTH))[0] == 200


async def test_latency_delays_the_answer(sandbox: Sandbox) -> None:
    await sandbox.fault("d7", latency_ms=300)
    started = time.monotonic()

    await sandbox.request("POST", SEND, json=BODY, headers=D7_AUTH)

    assert time.monotonic() - started >= 0.3


async def test_a_hang_never_answers(sandbox: Sandbox) -> None:
    await sandbox.fault("d7", hang=True)

    with pytest.raises(TimeoutError):
        await sandbox.request("POST", SEND, json=BODY, headers=D7_AUTH, timeout=aiohttp.ClientTimeout(total=0.3))


async def test_calls_are_counted_per_vendor_and_endpoint_and_reset_clears_everything(sandbox: Sandbox) -> None:
    await sandbox.fault("d7", status=500)
    await sandbox.request("POST", SEND, json=BODY, headers=D7_AUTH)
    await sandbox.request("POST", SEND, json=BODY, headers=D7_AUTH)

    assert (await sandbox.request("GET", "/_sandbox/calls"))[1] == {"d7": {"send-otp": 2}}
    await sandbox.request("POST", "/_sandbox/reset")
    assert (await sandbox.request("GET", "/_sandbox/calls"))[1] == {}
    assert (await sandbox.request("POST", SEND, json=BODY, headers=D7_AUTH))[0] == 200


async def test_every_message_a_number_received_is_kept_oldest_first(sandbox: Sandbox) -> None:
    for code in ("1111", "2222"):
        await sandbox.request("POST", "/inbox/+33612345678", json={"vendor": "console", "text": code, "code": code})

    status, inbox = await sandbox.request("GET", "/inbox/+33612345678/all")

    assert status == 200
    assert [message["code"] for message in inbox["messages"]] == ["1111", "2222"]
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[1]["code"] == "2222"


async def test_a_late_answer_comes_after_the_code_was_sent(sandbox: Sandbox) -> None:
    await sandbox.fault("d7", late_answer_ms=2000)

    with pytest.raises(TimeoutError):
        await sandbox.request("POST", SEND, json=BODY, headers=D7_AUTH, timeout=aiohttp.ClientTimeout(total=0.3))

    assert (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 200


async def test_a_request_given_up_on_during_latency_still_sends_its_code_late(sandbox: Sandbox) -> None:
    await sandbox.fault("d7", latency_ms=300)

    with pytest.raises(TimeoutError):
        await sandbox.request("POST", SEND, json=BODY, headers=D7_AUTH, timeout=aiohttp.ClientTimeout(total=0.1))
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 404

    async def landed() -> bool | None:
        return True if (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 200 else None

    assert await wait_for(landed, within=2.0)


@pytest.mark.parametrize(
    ("faults", "status", "content_type", "body"),
    [
        ({"garbage": "invalid_json"}, 200, "application/json", b'{"otp_id": "3f2c'),
        ({"garbage": "html", "status": 502}, 502, "text/html", HTML_ERROR_PAGE),
        ({"garbage": "empty"}, 200, "application/json", b""),
    ],
)
async def test_garbage_answers_instead_of_the_vendor_and_sends_nothing(
    sandbox: Sandbox, faults: dict[str, object], status: int, content_type: str, body: bytes
) -> None:
    await sandbox.fault("d7", **faults)

    async with sandbox.session.post(sandbox.url + SEND, json=BODY, headers=D7_AUTH) as response:
        answer = (response.status, response.content_type, await response.read())

    assert answer == (status, content_type, body)
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 404


async def test_a_wrong_content_type_labels_the_real_answer_text_plain(sandbox: Sandbox) -> None:
    await sandbox.fault("octopush", garbage="wrong_content_type")

    async with sandbox.session.post(
        sandbox.url + "/v1/public/service/otp/generate", json={"phone_number": "+33612345678"}, headers=OCTOPUSH_AUTH
    ) as response:
        answer = (response.status, response.content_type, json.loads(await response.read()))

    assert answer[:2] == (200, "text/plain")
    assert answer[2]["code"] == 0
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[1]["vendor"] == "octopush"


async def test_the_console_inbox_takes_the_same_faults(sandbox: Sandbox) -> None:
    await sandbox.fault("console", garbage="html", status=502)

    message = {"vendor": "console", "text": "1", "code": "1"}
    async with sandbox.session.post(sandbox.url + "/inbox/+33612345678", json=message) as response:
        assert (response.status, response.content_type) == (502, "text/html")

    assert (await sandbox.request("GET", "/_sandbox/calls"))[1] == {"console": {"inbox": 1}}


async def test_only_octopush_takes_an_account_callback_url(sandbox: Sandbox) -> None:
    put = "/_sandbox/callbacks/{}"

    assert await sandbox.request("PUT", put.format("octopush"), json={"url": "http://127.0.0.1:9/dlr"}) == (
        200,
        {"url": "http://127.0.0.1:9/dlr"},
    )
    status, body = await sandbox.request("PUT", put.format("d7"), json={"url": "http://127.0.0.1:9/dlr"})
    assert (status, body["error"]) == (400, "d7 takes its callback URLs with each send-otp (success_url, failure_url)")
    assert (await sandbox.request("PUT", put.format("messagecentral"), json={"url": "http://x.test/"}))[0] == 400
    assert (await sandbox.request("PUT", put.format("nobody"), json={"url": "http://x.test/"}))[0] == 404
    assert (await sandbox.request("PUT", put.format("octopush"), json={"url": "not a url"}))[0] == 400
    assert (await sandbox.request("GET", "/_sandbox/callbacks"))[1] == {"octopush": "http://127.0.0.1:9/dlr"}


async def test_reset_keeps_the_account_callback_url_and_forgets_the_phone(sandbox: Sandbox) -> None:
    await sandbox.request("PUT", "/_sandbox/callbacks/octopush", json={"url": "http://127.0.0.1:9/dlr"})
    await sandbox.request("PUT", "/_sandbox/phone", json={"url": "http://127.0.0.1:9/typed"})

    await sandbox.request("POST", "/_sandbox/reset")

    assert (await sandbox.request("GET", "/_sandbox/callbacks"))[1] == {"octopush": "http://127.0.0.1:9/dlr"}
    assert (await sandbox.request("GET", "/_sandbox/phone"))[1] == {"phone": None, "typed": []}


@pytest.mark.parametrize(
    ("vendor", "faults"),
    [
        ("d7", {"undelivered_rate": 0.6, "silent_drop_rate": 0.5}),
        ("d7", {"undelivered_status": "NOT_DELIVERED"}),
        ("octopush", {"undelivered_status": "undelivered"}),
        ("messagecentral", {"undelivered_status": "FAILED"}),
        ("d7", {"prefix": "33"}),
        ("d7", {"silent_drop_rate": 1.5}),
    ],
)
async def test_delivery_faults_that_cannot_hold_are_400(
    sandbox: Sandbox, vendor: str, faults: dict[str, object]
) -> None:
    assert (await sandbox.request("PUT", f"/_sandbox/faults/{vendor}", json=faults))[0] == 400


async def test_the_console_inbox_takes_the_delivery_faults(sandbox: Sandbox) -> None:
    await sandbox.fault("console", silent_drop_rate=1.0)

    message = {"vendor": "console", "text": "1", "code": "1"}
    assert (await sandbox.request("POST", "/inbox/+33612345678", json=message))[0] == 201

    assert (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 404
