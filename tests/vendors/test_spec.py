"""The message a transport-only provider sends: the OTP's content with the code in place."""

from tests.vendors.specs import SPEC
from vendors.spec import DEFAULT_CONTENT


def test_the_text_is_the_content_with_the_code_in_place() -> None:
    assert SPEC.text("123456") == "Your code is 123456"


def test_an_otp_sent_by_template_is_sent_as_the_default_text() -> None:
    spec = SPEC.model_copy(update={"content": None, "template_id": 25})

    assert spec.text("123456") == DEFAULT_CONTENT.replace("{}", "123456")
