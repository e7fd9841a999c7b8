"""What each adapter declares it can honour: a spec outside it is never handed to that vendor."""

import pytest

from config import ProviderSettings
from tests.vendors.specs import SPEC
from vendors import PROVIDER_CLASSES, cannot_honour

CREDENTIALS = {"api_token": "t", "login": "l", "password": "p"}


def provider(kind: str, **changes: object) -> ProviderSettings:
    return ProviderSettings.model_validate(
        {"name": kind, "kind": kind, "base_url": "http://127.0.0.1:1", **CREDENTIALS, **changes}
    )


@pytest.mark.parametrize(
    ("kind", "changes", "why"),
    [
        ("messagecentral", {"otp_type": "alphanumeric", "code_length": 4}, "no alphanumeric codes"),
        ("messagecentral", {"otp_type": "alpha", "code_length": 5}, "no alpha codes"),
        ("messagecentral", {"code_length": 10}, "codes of 10 characters (it sends 4 to 8)"),
        ("messagecentral", {"channel": "WhatsApp"}, "no WhatsApp channel"),
        ("octopush", {"channel": "WhatsApp"}, "no WhatsApp channel"),
    ],
)
def test_a_vendor_says_why_it_cannot_honour_a_spec(kind: str, changes: dict[str, object], why: str) -> None:
    assert cannot_honour(provider(kind, vendor_text=True), SPEC.model_copy(update=changes)) == why


@pytest.mark.parametrize("kind", sorted(PROVIDER_CLASSES))
def test_no_vendor_is_ever_handed_a_code_policy_below_the_floor(kind: str) -> None:
    weak = SPEC.model_copy(update={"code_length": 4})  # 10^4 codes: the API refuses it, a stored spec may hold it

    assert (cannot_honour(provider(kind, vendor_text=True), weak) or "").startswith("code policy below the floor")


def test_d7_honours_whatsapp_and_templates() -> None:
    spec = SPEC.model_copy(update={"channel": "WhatsApp", "content": None, "template_id": 25})

    assert cannot_honour(provider("d7"), spec) is None


def test_a_vendor_that_sends_its_own_text_is_passed_over_unless_the_operator_allows_it() -> None:
    assert cannot_honour(provider("messagecentral"), SPEC) == "no message text of the request's own"
    assert cannot_honour(provider("messagecentral", vendor_text=True), SPEC) is None


def test_a_template_goes_only_to_a_vendor_with_templates_or_one_allowed_its_own_text() -> None:
    spec = SPEC.model_copy(update={"content": None, "template_id": 25})

    assert cannot_honour(provider("octopush"), spec) == "no message templates"
    assert cannot_honour(provider("octopush", vendor_text=True), spec) is None


@pytest.mark.parametrize("kind", sorted(PROVIDER_CLASSES))
def test_only_octopush_honours_a_voice_step(kind: str) -> None:
    voice = SPEC.model_copy(update={"channel": "voice"})

    why = cannot_honour(provider(kind, vendor_text=True), voice)

    assert why is None if kind == "octopush" else why == "no voice channel"
