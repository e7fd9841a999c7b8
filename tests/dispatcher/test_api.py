"""The HTTP API's answers and error bodies, in D7's shapes, from the app in-process (no worker needed)."""

import pytest

from dispatcher.openapi import openapi_document
from tests.dispatcher.conftest import SECOND_TOKEN, LocalApi, LocalApiFactory
from tests.support import random_number


async def test_a_missing_token_gets_d7s_401_body(local_api: LocalApi) -> None:
    status, body = await local_api.post("/verify/v1/otp/send-otp", {"recipient": random_number()}, headers={})

    assert status == 401
    assert body["detail"]["code"] == "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED"


async def test_a_wrong_token_gets_d7s_401_body(local_api: LocalApi) -> None:
    status, body = await local_api.get("/verify/v1/report/abc", headers={"Authorization": "Bearer wrong"})

    assert status == 401
    assert body["detail"]["code"] == "ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED"


async def test_every_configured_token_is_accepted(local_api: LocalApi) -> None:
    status, _ = await local_api.post(
        "/verify/v1/otp/send-otp",
        {"recipient": random_number(), "content": "code {}"},
        headers={"Authorization": f"Bearer {SECOND_TOKEN}"},
    )

    assert status == 200


async def test_an_invalid_body_gets_d7s_422_list_naming_each_field(local_api: LocalApi) -> None:
    status, body = await local_api.post(
        "/verify/v1/otp/send-otp", {"recipient": "0612345678", "content": "x {}", "expiry": "soon"}
    )

    assert status == 422
    assert sorted(tuple(item["loc"]) for item in body["detail"]) == [("body", "expiry"), ("body", "recipient")]
    assert all(set(item) == {"loc", "msg", "type"} for item in body["detail"])


async def test_an_invalid_body_is_not_echoed_back(local_api: LocalApi) -> None:
    _, body = await local_api.post("/verify/v1/otp/send-otp", {"recipient": "+3361234567890123", "content": "x"})

    assert "3361234567890123" not in str(body)


async def test_malformed_json_is_a_422_not_a_500(local_api: LocalApi) -> None:
    async with local_api.session.post(
        local_api.url + "/verify/v1/otp/send-otp",
        data=b"{not json",
        headers=local_api.headers | {"Content-Type": "application/json"},
    ) as response:
        body = await response.json()

    assert response.status == 422
    assert body["detail"][0]["type"] == "json_invalid"


async def test_a_body_of_the_wrong_type_is_a_422(local_api: LocalApi) -> None:
    status, body = await local_api.post("/verify/v1/otp/send-otp", ["+33612345678"])

    assert status == 422
    assert body["detail"][0]["loc"] == ["body"]


async def test_a_huge_body_is_refused_with_413(local_api: LocalApi) -> None:
    status, body = await local_api.post(
        "/verify/v1/otp/send-otp", {"recipient": random_number(), "content": "{}" * 20_000}
    )

    assert status == 413
    assert body["detail"]["code"] == "BODY_TOO_LARGE"


async def test_the_report_of_an_unknown_id_is_d7s_404(local_api: LocalApi) -> None:
    status, body = await local_api.get("/verify/v1/report/3f0e1d2c-0000-4000-8000-000000000000")

    assert status == 404
    assert body["detail"]["code"] == "MESSAGE_LOG_NOT_EXISTS"


async def test_an_unknown_path_is_a_json_404(local_api: LocalApi) -> None:
    status, body = await local_api.get("/verify/v1/nothing-here")

    assert status == 404
    assert "code" in body["detail"]


async def test_send_answers_open_with_the_default_expiry(local_api: LocalApi) -> None:
    status, body = await local_api.post("/verify/v1/otp/send-otp", {"recipient": random_number(), "content": "code {}"})

    assert status == 200
    assert set(body) == {"otp_id", "status", "expiry"}
    assert (body["status"], body["expiry"]) == ("OPEN", 600)


async def test_null_optional_fields_take_their_defaults(local_api: LocalApi) -> None:
    status, body = await local_api.post(
        "/verify/v1/otp/send-otp",
        {"recipient": random_number(), "content": "code {}", "expiry": None, "template_id": None, "otp_type": None},
    )

    assert (status, body["expiry"]) == (200, 600)


async def test_verify_is_also_served_at_the_path_in_d7s_heading(local_api: LocalApi) -> None:
    status, body = await local_api.post(
        "/verify/v1/verify-otp", {"otp_id": "3f0e1d2c-0000-4000-8000-000000000000", "otp_code": "123456"}
    )

    assert (status, body) == (200, {"status": "FAILED"})


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "12345678901234"])
async def test_a_malformed_code_is_a_422(local_api: LocalApi, code: str) -> None:
    status, _ = await local_api.post("/verify/v1/otp/verify-otp", {"otp_id": "abc", "otp_code": code})

    assert status == 422


async def test_the_api_refuses_plain_http_methods_it_does_not_serve(local_api: LocalApi) -> None:
    async with local_api.session.delete(local_api.url + "/verify/v1/otp/send-otp") as response:
        assert response.status in (401, 405)


async def test_a_ready_api_says_so_without_a_token(local_api: LocalApi) -> None:
    assert await local_api.get("/readyz", headers={}) == (200, {"status": "ready"})


async def test_the_openapi_document_is_served_without_a_token(local_api: LocalApi) -> None:
    assert await local_api.get("/openapi.json", headers={}) == (200, openapi_document())


async def test_a_wrong_method_is_a_405_naming_the_allowed_ones(local_api: LocalApi) -> None:
    async with local_api.session.put(local_api.url + "/healthz") as response:
        body = await response.json()

    assert response.status == 405
    assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD"}
    assert body["detail"]["code"] == "METHOD_NOT_ALLOWED"


async def test_an_accepted_send_is_in_the_broker_when_answered(local_api: LocalApi) -> None:
    status, _ = await local_api.post("/verify/v1/otp/send-otp", {"recipient": random_number(), "content": "code {}"})

    assert (status, local_api.queued()) == (200, 1)


async def test_a_refused_send_queues_nothing(local_api: LocalApi) -> None:
    status, _ = await local_api.post("/verify/v1/otp/send-otp", {"recipient": "0612345678", "content": "code {}"})

    assert (status, local_api.queued()) == (422, 0)


async def test_send_otp_answers_503_when_the_replicas_asked_for_do_not_confirm_in_time(
    start_local_api: LocalApiFactory,
) -> None:
    # Given an API that must see each send on one replica, over a Redis that has none
    api = await start_local_api(redis={"wait_replicas": 1, "wait_timeout": 0.2})

    # When an OTP is sent
    status, body = await api.post("/verify/v1/otp/send-otp", {"recipient": random_number(), "content": "Code {}"})

    # Then the caller is told to try again rather than given an OTP that one crash could lose
    assert status == 503, body
    assert body["detail"]["code"] == "SERVICE_UNAVAILABLE"
    assert "replicas" in body["detail"]["message"]
