"""Phone numbers: splitting an E.164 number into country calling code and national number (vendors that want
both), and masking one for logs and reports."""

from __future__ import annotations

ONE_DIGIT = frozenset({"1", "7"})
TWO_DIGITS = frozenset(
    {
        "20",
        "27",
        "30",
        "31",
        "32",
        "33",
        "34",
        "36",
        "39",
        "40",
        "41",
        "43",
        "44",
        "45",
        "46",
        "47",
        "48",
        "49",
        "51",
        "52",
        "53",
        "54",
        "55",
        "56",
        "57",
        "58",
        "60",
        "61",
        "62",
        "63",
        "64",
        "65",
        "66",
        "81",
        "82",
        "84",
        "86",
        "90",
        "91",
        "92",
        "93",
        "94",
        "95",
        "98",
    }
)
"""ITU-T E.164 calling codes of one and two digits; every other code has three."""


def split_number(e164: str) -> tuple[str, str]:
    """``+33612345678`` → ``("33", "612345678")``."""
    digits = e164.removeprefix("+")
    if digits[:1] in ONE_DIGIT:
        size = 1
    elif digits[:2] in TWO_DIGITS:
        size = 2
    else:
        size = 3
    return digits[:size], digits[size:]


def mask_number(number: str) -> str:
    """A phone number as logs and reports show it: country code and last two digits (+3361****78)."""
    if len(number) <= 7:
        return number[:2] + "****"
    return f"{number[:5]}****{number[-2:]}"
