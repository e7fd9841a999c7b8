"""The callback routes in-process (``create_app`` on real Redis): vendors post receipts, the attempts take them.

No worker runs here: the test records the accepted attempt as the worker does (``OtpStore.mark_delivered``
with the vendor's receipt reference), then posts the vendor's receipt to the API over HTTP.
"""

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

from config import Settings
from dispatcher import codes
from dispatcher.constants import receipts_key
from dispatcher.sealing import Sealer
from dispatcher.store import OtpStore, connect
from tests.dispatcher.conftest import LocalApi, LocalApiFactory
from tests.dispatcher.store.otps import attempt
from tests.support import random_number, scrape
from vendors.receipts import callback_secret

PROVIDERS = [
    {"name": "d7", "kind": "d7", "base_url": "http://127.0.0.1:9", "api_token": "d7-token"},
    {"name": "octopush", "kind": "octopush", "base_url": "http://127.0.0.1:9", "login": "me", "password": "key"},
    {"name": "mc", "kind": "messagecentral", "base_url": "http://127.0.0.1:9", "login": "C-1", "password": "pw"},
]


@pytest.fixture
async def receiving(start_local_api: LocalApiFactory) -> LocalApi:
    """An in-process API whose chain has D7, Octopush (both send receipts) and Message Central (none)."""
    return await start_local_api(providers=PROVIDERS)


@pytest.fixture
async def store(local_settings: Settings) -> AsyncIterator[OtpStore]:
    """The store the API uses, as a worker sees it."""
    assert local_settings.redis_url is not None
    store = OtpStore(connect(local_settings.redis_url, 1.0), Sealer(local_settings.secret_key.get_secret_value()), 60)
    yield store
    await store.close()


def route(settings: Settings, vendor: str, secret: str | None = None) -> str:
    return f"/callbacks/{vendor}/{secret or callback_secret(settings.secret_key.get_secret_value(), vendor)}"


async def accepted(api: LocalApi, store: OtpStore, vendor: str, reference: str, code_hash: str = "") -> str:
    """An OTP sent through the API whose first attempt ``vendor`` accepted under ``reference``."""
    status, sent = await api.post("/verify/v1/otp/send-otp", {"recipient": random_number(), "content": "Code: {}"})
    assert status == 200
    otp_id = str(sent["otp_id"])
    if code_hash:
        await store.add_code_hash(otp_id, code_hash, 1, vendor)
    await store.mark_delivered(otp_id, 1, "", attempt(vendor), receipt_reference=reference)
    return otp_id


async def first_attempt(api: LocalApi, otp_id: str) -> dict[str, Any]:
    status, report = await api.get(f"/verify/v1/report/{otp_id}")
    assert status == 200
    return dict(report["attempts"][0])


def octopush(reference: str, status: str = "DELIVERED") -> dict[str, str]:
    return {"message_id": reference, "number": "+33612345678", "status": status, "delivery_date": "2026-01-01 10:00:00"}


async def test_a_delivered_receipt_updates_its_attempt_and_the_report_shows_its_time_and_latency(
    receiving: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    otp_id = await accepted(receiving, store, "octopush", "sms_a1")

    status, answer = await receiving.post(route(local_settings, "octopush"), octopush("sms_a1"), headers={})

    shown = await first_attempt(receiving, otp_id)
    assert (status, answer) == (200, {"status": "accepted"})
    assert (shown["receipt"], shown["receipt_status"]) == ("DELIVERED", "DELIVERED")
    assert shown["receipt_at"] is not None
    assert shown["receipt_latency_ms"] >= 0


async def test_an_attempt_without_a_receipt_yet_shows_none(
    receiving: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    otp_id = await accepted(receiving, store, "mc", "")

    shown = await first_attempt(receiving, otp_id)

    assert (shown["receipt"], shown["receipt_at"]) == (None, None)


async def test_a_d7_call_to_its_failure_url_marks_the_attempt_undelivered_with_the_reason(
    receiving: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    otp_id = await accepted(receiving, store, "d7", "d7-b2")

    status, _ = await receiving.post(
        route(local_settings, "d7") + "?event=failure", {"otp_id": "d7-b2", "status": "UNDELIVERABLE"}, headers={}
    )

    shown = await first_attempt(receiving, otp_id)
    assert (status, shown["receipt"], shown["receipt_reason"]) == (200, "UNDELIVERED", "undeliverable")


async def test_a_second_identical_receipt_answers_ok_and_changes_nothing(
    receiving: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    otp_id = await accepted(receiving, store, "octopush", "sms_c3")
    await receiving.post(route(local_settings, "octopush"), octopush("sms_c3"), headers={})
    before = await first_attempt(receiving, otp_id)

    status, _ = await receiving.post(route(local_settings, "octopush"), octopush("sms_c3"), headers={})

    assert status == 200
    assert await first_attempt(receiving, otp_id) == before


async def test_a_receipt_for_an_unknown_reference_answers_ok_and_changes_nothing(
    receiving: LocalApi, store: OtpStore, local_settings: Settings, broker: redis.Redis
) -> None:
    otp_id = await accepted(receiving, store, "octopush", "sms_d4")

    status, _ = await receiving.post(route(local_settings, "octopush"), octopush("sms_nobody"), headers={})

    assert status == 200
    assert not broker.exists(receipts_key(otp_id))


@pytest.mark.parametrize(
    ("vendor", "secret"),
    [("octopush", "0" * 32), ("octopush", "short"), ("octopush", None), ("nobody", None), ("mc", None)],
)
async def test_a_receipt_with_a_wrong_secret_is_refused_and_changes_nothing(
    receiving: LocalApi,
    store: OtpStore,
    local_settings: Settings,
    broker: redis.Redis,
    vendor: str,
    secret: str | None,
) -> None:
    otp_id = await accepted(receiving, store, "octopush", f"sms_e5-{vendor}-{secret}")
    forged = secret or callback_secret(local_settings.secret_key.get_secret_value(), "d7")  # another vendor's

    status, answer = await receiving.post(
        f"/callbacks/{vendor}/{forged}", octopush(f"sms_e5-{vendor}-{secret}"), headers=receiving.headers
    )

    assert (status, answer["detail"]["code"]) == (404, "NOT_FOUND")
    assert not broker.exists(receipts_key(otp_id))


async def test_an_unreadable_receipt_answers_ok_and_changes_nothing(
    receiving: LocalApi, store: OtpStore, local_settings: Settings, broker: redis.Redis
) -> None:
    otp_id = await accepted(receiving, store, "octopush", "sms_f6")

    status, _ = await receiving.post(route(local_settings, "octopush"), {"message_id": "sms_f6"}, headers={})

    assert status == 200
    assert not broker.exists(receipts_key(otp_id))


async def test_a_receipt_after_the_otp_was_verified_is_recorded_without_error(
    receiving: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    key = codes.code_key(local_settings.secret_key.get_secret_value())
    otp_id = await accepted(receiving, store, "octopush", "sms_g7", code_hash="")
    await store.add_code_hash(otp_id, codes.digest(key, otp_id, "123456"), 1, "octopush")
    _, verified = await receiving.post("/verify/v1/otp/verify-otp", {"otp_id": otp_id, "otp_code": "123456"})

    status, _ = await receiving.post(route(local_settings, "octopush"), octopush("sms_g7"), headers={})

    assert (verified["status"], status) == ("APPROVED", 200)
    assert (await first_attempt(receiving, otp_id))["receipt"] == "DELIVERED"


async def test_a_receipt_for_an_otp_already_gone_answers_ok(
    receiving: LocalApi, store: OtpStore, local_settings: Settings, broker: redis.Redis
) -> None:
    otp_id = await accepted(receiving, store, "octopush", "sms_h8")
    broker.delete(f"otp:{otp_id}", f"otp:{otp_id}:attempts")

    status, _ = await receiving.post(route(local_settings, "octopush"), octopush("sms_h8"), headers={})

    assert status == 200
    assert not broker.exists(receipts_key(otp_id))


async def test_receipts_are_counted_by_vendor_and_outcome_and_their_latency_by_vendor_and_channel(
    receiving: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    await accepted(receiving, store, "octopush", "sms_i9")

    await receiving.post(route(local_settings, "octopush"), octopush("sms_i9", "NOT_DELIVERED"), headers={})

    async with receiving.session.get(receiving.url + "/metrics") as response:
        metrics = await response.text()
    assert 'otp_receipts_total{kind="RECORDED",receipt="UNDELIVERED",vendor="octopush"}' in metrics
    assert 'otp_receipt_latency_seconds_count{channel="SMS",vendor="octopush"}' in metrics


async def test_a_first_receipt_with_evidence_is_counted_once_under_its_attempts_route(
    receiving: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    # Given a French number's OTP whose first attempt Octopush accepted (the SMS send-otp asked for)
    await accepted(receiving, store, "octopush", "sms_j1")
    sample = (
        "otp_route_receipts_total",
        (("channel", "SMS"), ("country", "+33"), ("receipt", "DELIVERED"), ("vendor", "octopush")),
    )
    before = (await scrape(receiving.url + "/metrics")).get(sample, 0)

    # When Octopush posts its delivered receipt twice
    for _ in range(2):
        await receiving.post(route(local_settings, "octopush"), octopush("sms_j1"), headers={})

    # Then one delivered receipt is counted for Octopush, SMS, +33
    assert (await scrape(receiving.url + "/metrics"))[sample] - before == 1
