"""What becomes of accepted messages: delivery faults per prefix, receipt delays and retries, the phone.

Where a test shows that something never happens (no receipt, no typing), it sends a second message that
is carried the same way after the first and waits for that one: the first's timer was due earlier.
"""

import time
from typing import Any

from devtools.processes import free_port
from tests.sandbox.conftest import D7_AUTH, Receiver, Sandbox
from tests.support import wait_for

SEND = "/verify/v1/otp/send-otp"


async def send(sandbox: Sandbox, receiver: Receiver, recipient: str) -> str:
    """A D7 send-otp to ``recipient`` reporting to ``/ok`` or ``/failed``; its otp_id."""
    body = {
        "recipient": recipient,
        "content": "Code {}",
        "success_url": receiver.url + "/ok",
        "failure_url": receiver.url + "/failed",
    }
    status, answer = await sandbox.request("POST", SEND, json=body, headers=D7_AUTH)
    assert status == 200, answer
    return str(answer["otp_id"])


async def receipt_record(sandbox: Sandbox, done: Any) -> dict[str, Any]:
    """The first receipt ``GET /_sandbox/receipts`` lists, once ``done(record)`` holds."""

    async def listed() -> dict[str, Any] | None:
        receipts = (await sandbox.request("GET", "/_sandbox/receipts"))[1]["receipts"]
        return receipts[0] if receipts and done(receipts[0]) else None

    record: dict[str, Any] = await wait_for(listed, within=5.0)
    return record


async def test_a_receipt_does_not_go_out_before_its_delay(sandbox: Sandbox, receiver: Receiver) -> None:
    await sandbox.fault("d7", receipt_delay_ms=400)
    started = time.monotonic()
    await send(sandbox, receiver, "+33612345678")

    [receipt] = await receiver.wait()

    assert receipt.at - started >= 0.4


async def test_the_default_receipt_delay_is_short(sandbox: Sandbox, receiver: Receiver) -> None:
    started = time.monotonic()
    await send(sandbox, receiver, "+33612345678")

    [receipt] = await receiver.wait()

    assert 0.2 <= receipt.at - started < 2.0


async def test_undelivered_messages_are_limited_to_numbers_with_the_prefix(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await sandbox.fault("d7", undelivered_rate=1.0, prefix="+91")
    indian = await send(sandbox, receiver, "+919812345678")
    french = await send(sandbox, receiver, "+33612345678")

    receipts = await receiver.wait(2)

    assert sorted((r.fields["request_id"], r.path, r.fields["status"]) for r in receipts) == sorted(
        [(indian, "/failed", "undelivered"), (french, "/ok", "delivered")]
    )
    assert (await sandbox.request("GET", "/inbox/+919812345678"))[0] == 404
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 200


async def test_a_silently_dropped_message_reaches_neither_the_phone_nor_the_callback(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    await sandbox.fault("d7", silent_drop_rate=1.0, prefix="+33")
    await send(sandbox, receiver, "+33612345678")
    british = await send(sandbox, receiver, "+447700900123")

    await receiver.wait()

    assert [(r.fields["request_id"], r.fields["status"]) for r in receiver.received] == [(british, "delivered")]
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 404
    assert (await sandbox.request("GET", "/inbox/+447700900123"))[0] == 200


async def test_a_lost_receipt_leaves_the_message_in_the_inbox(sandbox: Sandbox, receiver: Receiver) -> None:
    await sandbox.fault("d7", no_receipt_rate=1.0, prefix="+33")
    await send(sandbox, receiver, "+33612345678")
    british = await send(sandbox, receiver, "+447700900123")

    await receiver.wait()

    assert [r.fields["request_id"] for r in receiver.received] == [british]
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 200


async def test_rates_of_zero_deliver_everything_with_its_receipt(sandbox: Sandbox, receiver: Receiver) -> None:
    await sandbox.fault("d7", undelivered_rate=0.0, silent_drop_rate=0.0, no_receipt_rate=0.0)
    for number in ("+33612345678", "+33612345679", "+33612345670"):
        await send(sandbox, receiver, number)

    receipts = await receiver.wait(3)

    assert {r.fields["status"] for r in receipts} == {"delivered"}


async def test_a_callback_that_fails_is_retried_until_it_answers_2xx(sandbox: Sandbox, receiver: Receiver) -> None:
    receiver.answers = [500, 503]
    otp_id = await send(sandbox, receiver, "+33612345678")

    attempts = await receiver.wait(3)
    record = await receipt_record(sandbox, lambda record: record["acknowledged"])

    assert [a.fields["request_id"] for a in attempts] == [otp_id] * 3
    assert attempts[1].at - attempts[0].at >= 0.2
    assert (record["vendor"], record["message_id"], record["status"]) == ("d7", otp_id, "delivered")
    assert (record["attempts"], record["answer_status"], record["error"]) == (3, 200, None)


async def test_a_callback_that_never_acknowledges_is_tried_four_times(sandbox: Sandbox, receiver: Receiver) -> None:
    receiver.answers = [500] * 10

    await send(sandbox, receiver, "+33612345678")
    record = await receipt_record(sandbox, lambda record: record["attempts"] == 4)

    assert (record["acknowledged"], record["answer_status"]) == (False, 500)
    assert len(receiver.received) == 4


async def test_an_unreachable_callback_is_recorded_with_its_error(sandbox: Sandbox) -> None:
    dead = f"http://127.0.0.1:{free_port()}/ok"
    body = {"recipient": "+33612345678", "content": "Code {}", "success_url": dead}
    await sandbox.request("POST", SEND, json=body, headers=D7_AUTH)

    record = await receipt_record(sandbox, lambda record: record["error"] is not None)

    assert (record["url"], record["answer_status"], record["acknowledged"]) == (dead, None, False)


async def test_reset_drops_the_receipts_still_to_come(sandbox: Sandbox, receiver: Receiver) -> None:
    await sandbox.fault("d7", receipt_delay_ms=500)
    await send(sandbox, receiver, "+33612345678")
    await sandbox.request("POST", "/_sandbox/reset")
    await sandbox.fault("d7", receipt_delay_ms=600)
    after = await send(sandbox, receiver, "+33612345679")

    await receiver.wait()

    assert [r.fields["request_id"] for r in receiver.received] == [after]


async def test_the_phone_types_each_delivered_code_after_its_delay(sandbox: Sandbox, receiver: Receiver) -> None:
    phone = {"url": receiver.url + "/typed", "token": "bench-token", "delay_ms": [300, 400]}
    assert (await sandbox.request("PUT", "/_sandbox/phone", json=phone))[0] == 200
    started = time.monotonic()
    await sandbox.request("POST", SEND, json={"recipient": "+33612345678", "content": "Code {}"}, headers=D7_AUTH)
    code = (await sandbox.request("GET", "/inbox/+33612345678"))[1]["code"]

    [typed] = await receiver.wait()
    listed = (await sandbox.request("GET", "/_sandbox/phone"))[1]

    assert (typed.method, typed.path, typed.fields) == ("POST", "/typed", {"recipient": "+33612345678", "code": code})
    assert typed.headers["Authorization"] == "Bearer bench-token"
    assert typed.at - started >= 0.3
    assert listed["phone"]["token"] == "***"
    assert [(t["vendor"], t["recipient"], t["code"]) for t in listed["typed"]] == [("d7", "+33612345678", code)]
    assert (listed["typed"][0]["answer_status"], listed["typed"][0]["answer"]) == (200, {"received": True})


async def test_the_phone_never_types_a_code_it_did_not_get(sandbox: Sandbox, receiver: Receiver) -> None:
    await sandbox.request("PUT", "/_sandbox/phone", json={"url": receiver.url + "/typed", "delay_ms": [100, 100]})
    await sandbox.fault("console", undelivered_rate=1.0, prefix="+33")
    for number in ("+33612345678", "+447700900123"):
        message = {"vendor": "console", "text": "Code 1234", "code": "1234"}
        assert (await sandbox.request("POST", f"/inbox/{number}", json=message))[0] == 201

    await receiver.wait()

    assert [r.fields["recipient"] for r in receiver.received] == ["+447700900123"]
    assert (await sandbox.request("GET", "/inbox/+33612345678"))[0] == 404


async def test_invalid_phone_settings_are_400(sandbox: Sandbox) -> None:
    phone = {"url": "http://127.0.0.1:1/typed", "delay_ms": [500, 100]}

    assert (await sandbox.request("PUT", "/_sandbox/phone", json=phone))[0] == 400
