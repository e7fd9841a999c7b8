"""Each adapter reads its own vendor's receipts (pure functions, no I/O), the callback secret, and what a send
gives the vendor for receipts (against a canned vendor)."""

import json

import aiohttp
import pytest

from config import ProviderSettings
from tests.vendors.canned import Answer, Canned
from tests.vendors.specs import SPEC
from vendors import D7Provider, MessageCentralProvider, OctopushProvider
from vendors.console import ConsoleProvider
from vendors.receipts import BadReceipt, Receipt, ReceiptOutcome, Sent, callback_secret, callback_url

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def octopush(status: str, **extra: str) -> bytes:
    body = {
        "channel": "sms",
        "message_id": "sms_5fa275dbf21dc",
        "number": "+33600000000",
        "status": status,
        "delivery_date": "2020-11-04 11:11:45",
    }
    return json.dumps(body | extra).encode()


def test_a_d7_call_to_the_success_url_is_a_delivered_receipt_for_its_otp_id() -> None:
    body = json.dumps({"otp_id": "8d963dbf-d655-4fe6-9157-48885a036050"}).encode()

    receipt = D7Provider.parse_receipt(body, JSON, {"event": "success"})

    assert receipt == Receipt("8d963dbf-d655-4fe6-9157-48885a036050", ReceiptOutcome.DELIVERED, "success_url")


def test_a_d7_delivery_report_in_form_fields_names_the_otp_by_request_id_and_drops_the_recipient() -> None:
    body = b"request_id=0c4f8e52&msg_id=7053a678&recipient=%2B33612345678&originator=D7VERIFY&status=delivered"

    receipt = D7Provider.parse_receipt(body, FORM, {"event": "success"})

    assert receipt == Receipt("0c4f8e52", ReceiptOutcome.DELIVERED, "delivered")
    assert "612345678" not in repr(receipt)


@pytest.mark.parametrize("status", ["undelivered", "un_delivered"])
def test_a_d7_undelivered_report_on_the_failure_url_has_its_status_as_the_reason(status: str) -> None:
    body = f"request_id=0c4f8e52&status={status}".encode()

    receipt = D7Provider.parse_receipt(body, FORM, {"event": "failure"})

    assert (receipt.outcome, receipt.reason) == (ReceiptOutcome.UNDELIVERED, status)


@pytest.mark.parametrize("status", ["sent", "scheduled"])
def test_a_d7_intermediate_status_keeps_the_receipt_at_none(status: str) -> None:
    receipt = D7Provider.parse_receipt(f"request_id=0c4f8e52&status={status}".encode(), FORM, {"event": "success"})

    assert receipt.outcome is ReceiptOutcome.NONE


def test_a_d7_call_to_the_failure_url_is_undelivered_with_d7s_status_as_the_reason() -> None:
    body = json.dumps({"otp_id": "8d963dbf", "status": "UNDELIVERABLE"}).encode()

    receipt = D7Provider.parse_receipt(body, JSON, {"event": "failure"})

    assert (receipt.outcome, receipt.reason) == (ReceiptOutcome.UNDELIVERED, "undeliverable")


@pytest.mark.parametrize(
    ("body", "query"),
    [
        (b'{"otp_id": "8d963dbf"}', {}),
        (b'{"otp_id": "8d963dbf"}', {"event": "maybe"}),
        (b'{"status": "DELIVERED"}', {"event": "success"}),
        (b"not json", {"event": "success"}),
        (b'["8d963dbf"]', {"event": "success"}),
        (json.dumps({"otp_id": "x" * 201}).encode(), {"event": "success"}),
    ],
)
def test_a_d7_call_that_is_not_one_of_ours_is_a_bad_receipt(body: bytes, query: dict[str, str]) -> None:
    with pytest.raises(BadReceipt):
        D7Provider.parse_receipt(body, JSON, query)


def test_an_octopush_delivered_acknowledgement_is_a_delivered_receipt_for_its_message_id() -> None:
    receipt = OctopushProvider.parse_receipt(octopush("DELIVERED"), JSON, {})

    assert receipt == Receipt("sms_5fa275dbf21dc", ReceiptOutcome.DELIVERED, "DELIVERED")


@pytest.mark.parametrize("status", ["NOT_DELIVERED", "NOT_ALLOWED", "BAD_DESTINATION", "BLACKLISTED_NUMBER"])
def test_an_octopush_failure_status_is_undelivered_with_that_status_as_the_reason(status: str) -> None:
    receipt = OctopushProvider.parse_receipt(octopush(status), JSON, {})

    assert (receipt.outcome, receipt.reason, receipt.vendor_status) == (ReceiptOutcome.UNDELIVERED, status, status)


@pytest.mark.parametrize("status", ["ACK", "UNKNOWN_DELIVERY", "UNDEFINED", "SOMETHING_NEW"])
def test_an_octopush_status_without_evidence_keeps_the_receipt_at_none_but_records_the_word(status: str) -> None:
    receipt = OctopushProvider.parse_receipt(octopush(status), JSON, {})

    assert (receipt.outcome, receipt.vendor_status, receipt.reason) == (ReceiptOutcome.NONE, status, None)


def test_an_octopush_acknowledgement_in_form_fields_reads_like_json() -> None:
    body = b"message_id=sms_1&number=%2B33600000000&status=NOT_DELIVERED&delivery_date=2020-11-04+11%3A11%3A45"

    receipt = OctopushProvider.parse_receipt(body, FORM, {})

    assert receipt == Receipt("sms_1", ReceiptOutcome.UNDELIVERED, "NOT_DELIVERED", "NOT_DELIVERED")


def test_an_octopush_receipt_never_keeps_the_number() -> None:
    receipt = OctopushProvider.parse_receipt(octopush("DELIVERED"), JSON, {})

    assert "600000000" not in repr(receipt)


@pytest.mark.parametrize("body", [b'{"status": "DELIVERED"}', b'{"message_id": "sms_1"}', b"{", b"[]"])
def test_an_octopush_body_without_message_id_or_status_is_a_bad_receipt(body: bytes) -> None:
    with pytest.raises(BadReceipt):
        OctopushProvider.parse_receipt(body, JSON, {})


def test_only_d7_and_octopush_send_receipts() -> None:
    assert [cls.receipts for cls in (D7Provider, OctopushProvider, MessageCentralProvider, ConsoleProvider)] == [
        True,
        True,
        False,
        False,
    ]


def test_each_vendor_has_its_own_callback_secret_under_each_key() -> None:
    secrets = {callback_secret(key, vendor) for key in ("key-1", "key-2") for vendor in ("d7", "octopush")}

    assert len(secrets) == 4


def test_the_callback_url_is_the_public_base_and_the_vendors_route() -> None:
    url = callback_url("https://otp.example.com/", "key", "d7")

    assert url == f"https://otp.example.com/callbacks/d7/{callback_secret('key', 'd7')}"


async def test_a_d7_send_gives_d7_our_callback_route_as_success_and_failure_url(
    canned: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = canned
    vendor.default = Answer(body={"otp_id": "d7-otp", "status": "OPEN", "expiry": 600})
    settings = ProviderSettings(name="d7", kind="d7", base_url=url, api_token="token")
    route = callback_url("https://otp.example.com", "key", "d7")

    sent = await D7Provider(settings, session, route).send_tracked(SPEC, otp_id="ours", expiry=600)

    assert sent == Sent("d7-otp", "d7-otp")
    assert vendor.requests[0]["json"]["success_url"] == f"{route}?event=success"
    assert vendor.requests[0]["json"]["failure_url"] == f"{route}?event=failure"


async def test_an_octopush_send_keeps_the_ticket_its_receipts_name_beside_the_token_codes_are_checked_with(
    canned: tuple[Canned, str], session: aiohttp.ClientSession
) -> None:
    vendor, url = canned
    vendor.default = Answer(body={"code": 0, "ticket_number": "sms_5fa275dbf21dc", "otp_request_token": "otp_1"})
    settings = ProviderSettings(name="octopush", kind="octopush", base_url=url, login="me", password="key")

    sent = await OctopushProvider(settings, session).send_tracked(SPEC, otp_id="ours", expiry=600)

    assert sent == Sent("otp_1", "sms_5fa275dbf21dc")
