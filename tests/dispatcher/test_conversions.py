"""Conversions at the API in-process (``create_app`` on real Redis): an APPROVED verify is counted under the
vendor, channel and country of the attempt credited, the report names that attempt, and the stats route shows each
route's figures.

No worker runs here: the test makes the code verifiable and records the accepted attempt as the worker does.
"""

import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from config import Settings
from dispatcher import codes
from dispatcher.sealing import Sealer
from dispatcher.store import OtpStore, connect
from tests.dispatcher.conftest import LocalApi, LocalApiFactory
from tests.dispatcher.store.otps import attempt
from tests.support import random_number, scrape
from vendors.receipts import Receipt, ReceiptOutcome

CODE = "123456"


@pytest.fixture
async def api(start_local_api: LocalApiFactory) -> LocalApi:
    """An in-process API whose metrics name French numbers (+33) and count the rest as ``other``."""
    return await start_local_api(metrics_countries=("+33",))


@pytest.fixture
async def store(local_settings: Settings) -> AsyncIterator[OtpStore]:
    """The store the API uses, as a worker sees it."""
    assert local_settings.redis_url is not None
    store = OtpStore(connect(local_settings.redis_url, 1.0), Sealer(local_settings.secret_key.get_secret_value()), 60)
    yield store
    await store.close()


async def delivered(
    api: LocalApi, store: OtpStore, settings: Settings, recipient: str, vendor: str, reference: str | None = None
) -> str:
    """An OTP sent through the API whose code ``CODE`` ``vendor`` took for send 1 (receipts naming ``reference``)."""
    status, sent = await api.post("/verify/v1/otp/send-otp", {"recipient": recipient, "content": "Code: {}"})
    assert status == 200
    otp_id = str(sent["otp_id"])
    key = codes.code_key(settings.secret_key.get_secret_value())
    await store.add_code_hash(otp_id, codes.digest(key, otp_id, CODE), 1, vendor)
    await store.mark_delivered(otp_id, 1, "", attempt(vendor), receipt_reference=reference)
    return otp_id


def conversions(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], vendor: str, country: str) -> float:
    """The conversions counted for ``vendor`` and ``country``, over every channel."""
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "otp_conversions_total" and ("vendor", vendor) in labels and ("country", country) in labels
    )


def belgian_number() -> str:
    return "+32470" + "".join(secrets.choice("0123456789") for _ in range(6))


async def test_an_approved_verify_is_counted_under_the_credited_vendor_and_the_country(
    api: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    # Given a French number's OTP whose code octopush took
    otp_id = await delivered(api, store, local_settings, random_number(), "octopush")
    before = await scrape(api.url + "/metrics")

    # When its code is verified
    _, verified = await api.post("/verify/v1/otp/verify-otp", {"otp_id": otp_id, "otp_code": CODE})

    # Then one conversion is counted for octopush in +33, and its time from send to verify observed
    after = await scrape(api.url + "/metrics")
    assert verified["status"] == "APPROVED"
    assert conversions(after, "octopush", "+33") - conversions(before, "octopush", "+33") == 1
    count = ("otp_send_to_verify_seconds_count", (("vendor", "octopush"),))
    assert after[count] - before.get(count, 0) == 1


async def test_a_number_outside_the_configured_countries_is_counted_as_other(
    api: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    # Given a Belgian number's OTP (+32 is not configured)
    otp_id = await delivered(api, store, local_settings, belgian_number(), "d7")
    before = await scrape(api.url + "/metrics")

    # When its code is verified
    await api.post("/verify/v1/otp/verify-otp", {"otp_id": otp_id, "otp_code": CODE})

    # Then the conversion is counted as other, never under the number's own prefix
    after = await scrape(api.url + "/metrics")
    assert conversions(after, "d7", "other") - conversions(before, "d7", "other") == 1
    assert conversions(after, "d7", "+32") == 0


async def test_a_wrong_code_counts_no_conversion(api: LocalApi, store: OtpStore, local_settings: Settings) -> None:
    # Given a delivered OTP
    otp_id = await delivered(api, store, local_settings, random_number(), "mc")
    before = await scrape(api.url + "/metrics")

    # When a wrong code is checked
    _, verified = await api.post("/verify/v1/otp/verify-otp", {"otp_id": otp_id, "otp_code": "000000"})

    # Then nothing is counted
    after = await scrape(api.url + "/metrics")
    assert verified["status"] == "FAILED"
    assert conversions(after, "mc", "+33") == conversions(before, "mc", "+33")


async def test_the_report_names_the_attempt_converted_by(
    api: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    # Given an OTP whose code octopush took, verified
    otp_id = await delivered(api, store, local_settings, random_number(), "octopush")
    await api.post("/verify/v1/otp/verify-otp", {"otp_id": otp_id, "otp_code": CODE})

    # When it is reported
    status, report = await api.get(f"/verify/v1/report/{otp_id}")

    # Then the report names octopush's attempt of send 1
    assert status == 200
    assert (report["converted_by"]["vendor"], report["converted_by"]["send_number"]) == ("octopush", 1)


async def test_an_accepted_otp_is_counted_under_its_country(api: LocalApi) -> None:
    # Given the count of French OTPs so far
    sample = ("otp_accepted_by_country_total", (("country", "+33"),))
    before = (await scrape(api.url + "/metrics")).get(sample, 0)

    # When an OTP to a French number is accepted
    status, _ = await api.post("/verify/v1/otp/send-otp", {"recipient": random_number(), "content": "Code: {}"})

    # Then it is counted under +33
    assert status == 200
    assert (await scrape(api.url + "/metrics"))[sample] - before == 1


def figures(answer: dict[str, Any], vendor: str) -> dict[str, Any]:
    """The stats route's figures of ``vendor``'s route, without its name."""
    [found] = [route for route in answer["routes"] if route["vendor"] == vendor]
    return {name: value for name, value in found.items() if name != "vendor"}


async def test_the_stats_route_gives_each_routes_figures_over_the_last_hour_and_day(
    api: LocalApi, store: OtpStore, local_settings: Settings
) -> None:
    # Given two French OTPs one vendor took: one verified at once, the other with a delivered receipt
    vendor = f"v{uuid.uuid4().hex[:12]}"
    verified = await delivered(api, store, local_settings, random_number(), vendor)
    await delivered(api, store, local_settings, random_number(), vendor, reference=f"{vendor}-ref")
    await store.record_receipt(vendor, Receipt(f"{vendor}-ref", ReceiptOutcome.DELIVERED, "DELIVERED"), time.time())
    await api.post("/verify/v1/otp/verify-otp", {"otp_id": verified, "otp_code": CODE})

    # When the stats of the last hour and of the last day are asked for
    answers = {window: await api.get(f"/stats/v1/routes?window={window}") for window in ("hour", "day")}

    # Then both show the route's sends, receipts, conversions, rate and median time to verify (0 whole seconds)
    expected = {
        "channel": "SMS",
        "country": "+33",
        "sends": 2,
        "delivered_receipts": 1,
        "undelivered_receipts": 0,
        "conversions": 1,
        "conversion_rate": 0.5,
        "expired_unconverted": 0,
        "median_verify_seconds": 0.0,
    }
    for window, (status, answer) in answers.items():
        assert status == 200
        assert answer["window"] == window
        assert figures(answer, vendor) == expected
    since = {window: datetime.fromisoformat(answer["since"]) for window, (_, answer) in answers.items()}
    assert timedelta(hours=23) <= since["hour"] - since["day"] <= timedelta(hours=23, minutes=1)


async def test_the_stats_route_reads_the_last_hour_by_default(api: LocalApi) -> None:
    status, answer = await api.get("/stats/v1/routes")

    assert status == 200
    assert answer["window"] == "hour"
    until = datetime.fromisoformat(answer["until"])
    assert until - datetime.fromisoformat(answer["since"]) <= timedelta(hours=1)


async def test_the_stats_route_asks_for_the_token(api: LocalApi) -> None:
    status, answer = await api.get("/stats/v1/routes", headers={})

    assert status == 401
    assert answer["detail"]["code"] == "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED"


async def test_a_window_other_than_hour_or_day_is_d7s_422(api: LocalApi) -> None:
    status, answer = await api.get("/stats/v1/routes?window=week")

    assert status == 422
    assert [item["loc"] for item in answer["detail"]] == [["query", "window"]]
