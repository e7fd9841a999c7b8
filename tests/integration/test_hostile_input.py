"""Hostile verifies of a real code, delivered through the running stack: the code written in other digit
scripts never approves. The other hostile requests need no worker: tests/dispatcher/test_hostile_input.py."""

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.dispatcher.test_hostile_input import UNICODE_ZEROS, bounded, in_script, invalid, post_json
from tests.support import Api, Stack, random_number


@pytest.fixture
async def local_code(api: Api) -> tuple[str, str]:
    """An OTP with a six-digit code the dispatcher generated (delivered by the console provider), and its code."""
    await api.only_console()
    recipient = random_number()
    otp_id = await api.send(recipient=recipient, otp_code_length=6)
    assert (await api.delivered(otp_id))["delivered_by"] == "console"
    return otp_id, (await api.inbox(recipient))["code"]


@pytest.mark.slow
async def test_the_code_in_other_digit_scripts_never_approves(local_code: tuple[str, str], stack: Stack) -> None:
    otp_id, code = local_code

    @bounded
    @given(
        zeros=st.lists(st.sampled_from(UNICODE_ZEROS), min_size=len(code), max_size=len(code)),
        ascii_kept=st.sets(st.integers(0, len(code) - 1), max_size=len(code) - 1),
    )
    @example(zeros=["\u0660"] * len(code), ascii_kept=set())  # Arabic-Indic
    @example(zeros=["\uff10"] * len(code), ascii_kept=set())  # fullwidth
    def lookalike(zeros: list[str], ascii_kept: set[int]) -> None:
        """``code`` with each digit written in the script of ``zeros[i]``, but those in ``ascii_kept``."""
        spelled = "".join(d if i in ascii_kept else in_script(d, zeros[i]) for i, d in enumerate(code))

        status, answer = post_json(
            stack.api_url, "/verify/v1/otp/verify-otp", {"otp_id": otp_id, "otp_code": spelled}, stack.token
        )

        assert status == 422 or json.loads(answer) == {"status": "FAILED"}, (status, answer)
        if status == 422:
            assert invalid(status, answer).detail[0].loc == ["body", "otp_code"]

    lookalike()

    assert post_json(stack.api_url, "/verify/v1/otp/verify-otp", {"otp_id": otp_id, "otp_code": code}, stack.token) == (
        200,
        b'{"status":"APPROVED"}',
    )
