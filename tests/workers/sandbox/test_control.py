"""The sandbox's own routes: inbox, faults, counters, reset."""

import time

import aiohttp
import pytest

from tests.workers.sandbox.conftest import D7_AUTH, Sandbox

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
