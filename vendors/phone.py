"""Phone numbers, parsed once with libphonenumber's metadata (the ``phonenumbers`` package, kept current).

``parse`` accepts what people type ("+33 6 12 34 56 78", "+33 (0)6-12-34-56-78") in ASCII, refuses what is not
a valid number for its country, and gives the number in E.164 with its country calling code and line type:
every other part (the API's validation, routes, allowlists, vendors that want the country code apart,
the pumping guard's premium-rate refusal) reads the same parse. ``mask_number`` is how logs and reports
show one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

TYPED = re.compile(r"\+[0-9 .()/-]{7,24}")
"""What a person may type: a leading plus, ASCII digits and the usual separators (never other scripts' digits)."""
PREMIUM_TYPES = frozenset({PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST})
"""Line types that bill the sender and are a pumping vector: refused for SMS unless allowed by a setting."""


PARSED_CACHE = 4096
"""Numbers whose parse is kept (a ``Number`` is a few strings)."""


class InvalidNumber(ValueError):
    """The text is not a valid international phone number."""


@dataclass(frozen=True, slots=True)
class Number:
    e164: str
    """``+33612345678``."""
    country_code: str
    """The country calling code, without the plus: ``33``."""
    national: str
    """The national significant number: ``612345678``."""
    premium: bool
    """Premium-rate or shared-cost: the caller pays the number's owner."""


@functools.lru_cache(maxsize=PARSED_CACHE)
def parse(text: str) -> Number:
    """The number ``text`` stands for; ``InvalidNumber`` saying why when it is none. Cached: a send parses its
    number twice (the request's validation, the guards) and libphonenumber takes about 30 µs a parse, over 5% of
    the API's CPU at the peak (``make bench``'s profile)."""
    if not TYPED.fullmatch(text):
        raise InvalidNumber("must be an international number: + then the country code and number, in ASCII digits")
    try:
        number = phonenumbers.parse(text, None)
    except NumberParseException as exc:
        raise InvalidNumber("is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber("is not a valid number for its country")
    return Number(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        country_code=str(number.country_code),
        national=phonenumbers.national_significant_number(number),
        premium=phonenumbers.number_type(number) in PREMIUM_TYPES,
    )


def split_number(e164: str) -> tuple[str, str]:
    """``+33612345678`` → ``("33", "612345678")``."""
    number = parse(e164)
    return number.country_code, number.national


def mask_number(number: str) -> str:
    """A phone number as logs and reports show it: country code and last two digits (+3361****78)."""
    if len(number) <= 7:
        return number[:2] + "****"
    return f"{number[:5]}****{number[-2:]}"
