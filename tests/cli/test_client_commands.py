"""``otp-dispatcher send / verify / status`` against the running stack, as a person at a shell uses them."""

import json
import subprocess
import sys

from tests.support import Api, Stack, random_number


def command(stack: Stack, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = stack.env | {"OTP_API_URL": stack.api_url, "OTP_API_TOKEN": token or stack.token}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


async def test_send_verify_and_status_take_an_otp_through_its_life(api: Api, stack: Stack) -> None:
    recipient = random_number()

    sent = command(stack, "send", recipient, "--json")
    otp_id = json.loads(sent.stdout)["otp_id"]
    await api.delivered(otp_id)
    verified = command(stack, "verify", otp_id, (await api.inbox(recipient))["code"])
    status = command(stack, "status", otp_id)

    assert (sent.returncode, verified.returncode, status.returncode) == (0, 0, 0)
    assert verified.stdout.strip() == "APPROVED"
    assert status.stdout.startswith(f"{otp_id} VERIFIED to {recipient[:5]}****{recipient[-2:]}, delivered by d7")
    assert "send 1: d7 DELIVERED" in status.stdout


async def test_a_wrong_code_exits_1_and_says_failed(api: Api, stack: Stack) -> None:
    otp_id = await api.send()

    verified = command(stack, "verify", otp_id, "000000", "--json")

    assert (verified.returncode, json.loads(verified.stdout)) == (1, "FAILED")


def test_an_api_refusal_is_one_line_with_its_code(stack: Stack) -> None:
    refused = command(stack, "send", random_number(), token="wrong-token")

    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "otp-dispatcher: ACCESS_TOKEN_SIGNATURE_VERIFICATION_FAILED: "
        "It looks like your requests were failed due to a missing or invalid 'Access Token'."
    ]
