import string

import pytest

from config import OtpType
from dispatcher import codes

KEY = codes.code_key("test-secret")


@pytest.mark.parametrize(
    ("otp_type", "alphabet"),
    [
        ("numeric", string.digits),
        ("alpha", string.ascii_uppercase),
        ("alphanumeric", string.digits + string.ascii_uppercase),
    ],
)
def test_generated_codes_have_the_length_and_alphabet_of_their_type(otp_type: OtpType, alphabet: str) -> None:
    generated = {codes.generate(8, otp_type) for _ in range(200)}

    assert all(len(code) == 8 and set(code) <= set(alphabet) for code in generated)
    assert len(generated) > 190  # drawn at random, not repeated


def test_a_code_matches_its_own_digest_only() -> None:
    stored = codes.digest(KEY, "otp-1", "123456")

    assert codes.digest(KEY, "otp-1", "123456") == stored
    assert codes.digest(KEY, "otp-1", "123457") != stored


def test_a_digest_is_bound_to_its_otp_id_and_key() -> None:
    stored = codes.digest(KEY, "otp-1", "123456")

    assert codes.digest(KEY, "otp-2", "123456") != stored
    assert codes.digest(codes.code_key("other-secret"), "otp-1", "123456") != stored


def test_the_digest_does_not_contain_the_code() -> None:
    assert "123456" not in codes.digest(KEY, "otp-1", "123456")


def test_letters_match_whatever_their_case() -> None:
    stored = codes.digest(KEY, "otp-1", "AB12CD")

    assert codes.digest(KEY, "otp-1", "ab12cd") == stored
