"""Octopush OTP: Octopush generates the code, sends it, and checks it (verification is forwarded here).

Answers are mapped in ``_failure`` only. Octopush reports errors as a numeric ``code`` in the body:
on generate, 401/403 and the credit error make the vendor unavailable, other 4xx reject the request,
429 and 5xx are temporary. On validate, 199 (wrong code), 196 (too many wrong codes), 197 (expired)
and 198 (unknown token) all mean "not approved".

Receipts: Octopush calls one callback URL per account, set in its console ("Callbacks" in the menu; not per
request: the operator enters our route there), with an HTTP POST per acknowledgement of receipt:
``channel``, ``message_id`` ("ticket of the original message"), ``number``, ``status`` and
``delivery_date`` ("Y-m-d H:i:s") (dev.octopush.com, Callbacks > Acknowledge receipt; its example reads
a JSON body, so we take JSON, and form fields too). ``message_id`` is the ``ticket_number`` generate
answered, so a send keeps that as the reference receipts name, beside the ``otp_request_token`` that
codes are checked with. The statuses: DELIVERED; NOT_DELIVERED, NOT_ALLOWED, BAD_DESTINATION and
BLACKLISTED_NUMBER (not delivered, for that reason); ACK (taken by the first carrier), UNKNOWN_DELIVERY
and UNDEFINED (no evidence about the handset). The ``number`` is never kept.

Voice: a spec on the ``voice`` channel (a later workflow step's) goes out as ``channel: "voice_sms"``, a call that
reads the text, in ``voice_language``: the language Octopush lists for the number's country (``VOICE_LANGUAGES``,
by country calling code), else ``en-GB`` (``DEFAULT_VOICE_LANGUAGE``). Only a country whose one national language
Octopush reads is mapped (Switzerland, Belgium or Canada get en-GB rather than a guess at the callee's language);
``voice_gender`` is left to Octopush's default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from vendors.base import ALL_TYPES, Capabilities, Provider
from vendors.errors import ProviderError, Rejected, TemporaryError, VendorUnavailable
from vendors.phone import InvalidNumber, parse
from vendors.receipts import MAX_REFERENCE, BadReceipt, Receipt, ReceiptOutcome, Sent, clip
from vendors.spec import OtpSpec

GENERATE_PATH = "/service/otp/generate"
VALIDATE_PATH = "/service/otp/validate"
CODE_PLACEHOLDER = "{code}"
DEFAULT_TEXT = "Your verification code is {code}"
NOT_APPROVED = frozenset({196, 197, 198, 199})
CREDIT_CODES = frozenset({102, 103})
"""Octopush's 'not enough credit' family."""
DELIVERED = frozenset({"DELIVERED"})
CHANNELS = {"SMS": "sms", "voice": "voice_sms"}
"""Octopush's ``channel`` for each channel it honours."""
DEFAULT_VOICE_LANGUAGE = "en-GB"
"""The voice of a call to a country Octopush lists no language for."""
VOICE_LANGUAGES = {
    "1": "en-US",  # the US and the NANP countries (Canada's French speakers get English too)
    "44": "en-GB",
    "61": "en-GB",  # Australia, New Zealand, Ireland, South Africa: English, British voice
    "64": "en-GB",
    "353": "en-GB",
    "27": "en-GB",
    "30": "el-GR",
    "357": "el-GR",  # Cyprus
    "48": "pl-PL",
    "36": "hu-HU",
    "46": "sv-SE",
    "49": "de-DE",
    "43": "de-DE",  # Austria
    "34": "es-ES",
    "52": "es-LA",  # Mexico, Central and South America's Spanish-speaking countries
    "54": "es-LA",
    "56": "es-LA",
    "57": "es-LA",
    "51": "es-LA",
    "58": "es-LA",
    "593": "es-LA",
    "591": "es-LA",
    "595": "es-LA",
    "598": "es-LA",
    "502": "es-LA",
    "503": "es-LA",
    "504": "es-LA",
    "505": "es-LA",
    "506": "es-LA",
    "507": "es-LA",
    "53": "es-LA",
    "33": "fr-FR",
    "262": "fr-FR",  # Réunion, Mayotte, Guadeloupe, Martinique, French Guiana: France's overseas departments
    "590": "fr-FR",
    "596": "fr-FR",
    "594": "fr-FR",
    "377": "fr-FR",  # Monaco
    "39": "it-IT",
    "55": "pt-BR",
    "7": "ru-RU",  # Russia and Kazakhstan
    "375": "ru-RU",  # Belarus
}
"""The voice Octopush reads a code in, by the number's country calling code (its ``voice_language`` list)."""
UNDELIVERED = frozenset({"NOT_DELIVERED", "NOT_ALLOWED", "BAD_DESTINATION", "BLACKLISTED_NUMBER"})
"""Receipt statuses that say the handset was not reached (ACK, UNKNOWN_DELIVERY, UNDEFINED say nothing)."""


class OctopushProvider(Provider):
    generates_codes: ClassVar[bool] = True
    capabilities: ClassVar[Capabilities] = Capabilities(
        channels=frozenset(CHANNELS),  # voice (voice_sms): only a later workflow step asks for it, never D7's API
        otp_types=ALL_TYPES,  # upper-case letters and digits
        code_lengths=range(4, 33),
        content=True,
        templates=False,  # no D7 templates: with vendor_text, DEFAULT_TEXT is sent
    )
    receipts: ClassVar[bool] = True

    async def send(self, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> str:
        return (await self.send_tracked(spec, otp_id=otp_id, expiry=expiry, code=code)).reference

    async def send_tracked(self, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None) -> Sent:
        if spec.channel not in CHANNELS:  # the Deliverer never hands it one (cannot_honour): never send another
            raise Rejected("CANNOT_HONOUR", f"Octopush has no {spec.channel} channel")
        body: dict[str, Any] = {
            "phone_number": spec.recipient,
            "channel": CHANNELS[spec.channel],
            "text": spec.content.replace("{}", CODE_PLACEHOLDER) if spec.content else DEFAULT_TEXT,
            "code_length": spec.code_length,
            "allow_digits": spec.otp_type in ("numeric", "alphanumeric"),
            "allow_upper_case": spec.otp_type in ("alpha", "alphanumeric"),
            "allow_lower_case": False,
            "allow_special_chars": False,
            "validity_period": expiry,
        }
        if spec.channel == "voice":
            body["voice_language"] = voice_language(spec.recipient)
        if 3 <= len(spec.originator) <= 11 and spec.originator.isalnum():
            body["sender"] = spec.originator
        status, answer = await self.call("POST", GENERATE_PATH, json=body, headers=self._headers())
        if status == 200 and isinstance(answer, dict) and answer.get("code") == 0:
            token = answer.get("otp_request_token")
            if isinstance(token, str) and token:
                ticket = answer.get("ticket_number")
                return Sent(token, str(ticket) if isinstance(ticket, str | int) and ticket != "" else None)
        raise _failure(status, answer)

    async def resend_tracked(
        self, reference: str, spec: OtpSpec, *, otp_id: str, expiry: int, code: str | None = None
    ) -> Sent:
        return await self.send_tracked(spec, otp_id=otp_id, expiry=expiry, code=code)

    @classmethod
    def parse_receipt(cls, body: bytes, content_type: str, query: Mapping[str, str]) -> Receipt:
        """One acknowledgement of receipt, as JSON or as form fields; the ``number`` in it is dropped."""
        fields: Any
        try:
            if content_type == "application/x-www-form-urlencoded":
                fields = dict(parse_qsl(body.decode()))
            else:
                fields = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise BadReceipt("neither JSON nor form fields") from None
        if not isinstance(fields, dict):
            raise BadReceipt("not an object")
        reference, status = fields.get("message_id"), fields.get("status")
        if not isinstance(reference, str | int) or not str(reference) or len(str(reference)) > MAX_REFERENCE:
            raise BadReceipt("no message_id")
        if not isinstance(status, str) or not status:
            raise BadReceipt("no status")
        word = clip(status.upper())
        if word in DELIVERED:
            return Receipt(str(reference), ReceiptOutcome.DELIVERED, word)
        if word in UNDELIVERED:
            return Receipt(str(reference), ReceiptOutcome.UNDELIVERED, word, word)
        return Receipt(str(reference), ReceiptOutcome.NONE, word)

    async def check(self, reference: str, code: str) -> bool:
        status, answer = await self.call(
            "PUT", VALIDATE_PATH, json={"code": code, "otp_request_token": reference}, headers=self._headers()
        )
        body_code = answer.get("code") if isinstance(answer, dict) else None
        if status == 200 and body_code == 0:
            return True
        if body_code in NOT_APPROVED:
            return False
        raise _failure(status, answer)

    def _headers(self) -> dict[str, str]:
        return {"api-login": self.settings.login, "api-key": self.settings.password.get_secret_value()}


def voice_language(recipient: str) -> str:
    """The language Octopush reads a code to ``recipient`` in: its country's, where Octopush lists it, else en-GB."""
    try:
        country = parse(recipient).country_code
    except InvalidNumber:
        return DEFAULT_VOICE_LANGUAGE
    return VOICE_LANGUAGES.get(country, DEFAULT_VOICE_LANGUAGE)


def _failure(status: int, body: Any) -> ProviderError:
    """The one place Octopush's error answers are classified."""
    body_code = body.get("code") if isinstance(body, dict) else None
    code = f"OCTOPUSH_{body_code}" if isinstance(body_code, int) else f"HTTP_{status}"
    if status == 200:
        return TemporaryError("BAD_RESPONSE", "Octopush answered 200 without a request token")
    if status in (401, 402, 403) or body_code in CREDIT_CODES:
        return VendorUnavailable(code, f"Octopush refused the account (HTTP {status})")
    if status == 429 or status >= 500:
        return TemporaryError(code, f"Octopush answered HTTP {status}")
    return Rejected(code, f"Octopush rejected the request (HTTP {status})")
