"""Phone numbers, parsed once with libphonenumber's metadata: no I/O."""

import pytest

from vendors.phone import InvalidNumber, mask_number, parse, split_number


@pytest.mark.parametrize(
    ("number", "parts"),
    [
        ("+14155550100", ("1", "4155550100")),
        ("+79161234567", ("7", "9161234567")),
        ("+33612345678", ("33", "612345678")),
        ("+447911123456", ("44", "7911123456")),
        ("+919812345678", ("91", "9812345678")),
        ("+353871234567", ("353", "871234567")),
        ("+971501234567", ("971", "501234567")),
    ],
)
def test_numbers_split_into_country_code_and_national_number(number: str, parts: tuple[str, str]) -> None:
    assert split_number(number) == parts


@pytest.mark.parametrize("typed", ["+33 6 12 34 56 78", "+33 (0)6-12-34-56-78", "+33.6.12.34.56.78", "+33612345678"])
def test_human_formatting_is_read_as_the_e164_number(typed: str) -> None:
    assert parse(typed).e164 == "+33612345678"


@pytest.mark.parametrize(
    "text",
    [
        "+3361234567",  # a digit short for France
        "+33 6 12",
        "+0612345678",  # no country code starts with 0
        "0612345678",  # a national number
        "+999123456789",  # no such country code
        "+\u0663\u0663\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
        "+33abc45678",
    ],
)
def test_what_is_not_a_valid_international_number_is_refused(text: str) -> None:
    with pytest.raises(InvalidNumber):
        parse(text)


def test_premium_rate_numbers_are_told_apart_from_mobiles() -> None:
    assert parse("+33899123456").premium
    assert not parse("+33612345678").premium


def test_a_masked_number_keeps_the_country_code_and_the_last_two_digits() -> None:
    assert mask_number("+33612345678") == "+3361****78"
