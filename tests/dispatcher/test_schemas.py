import pytest
from pydantic import ValidationError

from dispatcher.schemas import SendOtpRequest, VerifyOtpRequest


def test_numbers_sent_as_strings_are_accepted_like_d7_does() -> None:
    request = SendOtpRequest.model_validate({"recipient": "+33612345678", "template_id": "25", "expiry": "600"})

    assert (request.template_id, request.expiry) == (25, 600)


def test_null_for_an_optional_field_means_its_default() -> None:
    request = SendOtpRequest.model_validate(
        {"recipient": "+33612345678", "content": "code {}", "channel": None, "originator": None, "expiry": None}
    )

    assert (request.channel, request.originator, request.expiry) == ("SMS", "Verify", None)


@pytest.mark.parametrize("recipient", ["33612345678", "+0612345678", "+33 6 12", "+3361234567890123", "+33abc45678"])
def test_a_recipient_not_in_e164_form_is_refused(recipient: str) -> None:
    with pytest.raises(ValidationError):
        SendOtpRequest.model_validate({"recipient": recipient, "content": "code {}"})


def test_a_number_typed_with_spaces_is_stored_in_e164_form() -> None:
    request = SendOtpRequest.model_validate({"recipient": "+33 6 12 34 56 78", "content": "code {}"})

    assert request.recipient == "+33612345678"


def test_channel_type_and_coding_are_read_in_any_letter_case() -> None:
    request = SendOtpRequest.model_validate(
        {
            "recipient": "+33612345678",
            "content": "code {}",
            "channel": "sms",
            "otp_type": "Alpha",
            "data_coding": "TEXT",
        }
    )

    assert (request.channel, request.otp_type, request.data_coding) == ("SMS", "alpha", "text")


@pytest.mark.parametrize("field", ["expiry", "retry_delay", "retry_count", "otp_code_length", "template_id"])
def test_a_boolean_is_not_taken_for_a_number(field: str) -> None:
    with pytest.raises(ValidationError, match="not true or false"):
        SendOtpRequest.model_validate({"recipient": "+33612345678", "content": "code {}", field: True})


def test_content_without_a_placeholder_is_refused() -> None:
    with pytest.raises(ValidationError, match="must contain"):
        SendOtpRequest.model_validate({"recipient": "+33612345678", "content": "no code here"})


def test_content_or_template_is_required() -> None:
    with pytest.raises(ValidationError, match="content is required"):
        SendOtpRequest.model_validate({"recipient": "+33612345678"})


def test_a_numeric_code_sent_as_a_json_number_is_read_as_text() -> None:
    assert VerifyOtpRequest.model_validate({"otp_id": "ab-12", "otp_code": 123456}).otp_code == "123456"


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "12 34", "1234567890123", "12"])
def test_codes_other_than_ascii_letters_and_digits_are_refused(code: str) -> None:
    with pytest.raises(ValidationError):
        VerifyOtpRequest.model_validate({"otp_id": "ab-12", "otp_code": code})
