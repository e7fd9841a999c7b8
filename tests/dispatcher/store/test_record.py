"""The record's codec, pure, and the record as Redis holds it."""

import redis

from dispatcher.sealing import Sealer
from dispatcher.store import OtpStore
from dispatcher.store.record import Field, delivery_state, encode
from tests.dispatcher.store.otps import delivered_with_code, new, new_otp

SEALER = Sealer("secret")


def stored(fields: dict[Field, object]) -> dict[str, str]:
    """The hash as Redis answers it: every name and value a string."""
    return {str(name): str(value) for name, value in fields.items()}


def test_a_new_record_decodes_to_its_whole_spec() -> None:
    otp = new(template_id=25, content=None, success_url="https://example.com/ok", failure_url="https://example.com/ko")

    state = delivery_state(otp.otp_id, stored(encode(otp, SEALER)), SEALER)

    assert state.spec == otp.spec


def test_a_new_record_awaits_its_first_send() -> None:
    otp = new()

    state = delivery_state(otp.otp_id, stored(encode(otp, SEALER)), SEALER)

    assert (state.send_seq, state.delivered_seq, state.chain_pos, state.vendor) == (1, 0, 0, "")
    assert state.expires_at == otp.created_at + otp.spec.expiry


def test_the_spec_is_sealed_whole_in_one_field() -> None:
    otp = new(success_url="https://example.com/ok")

    fields = stored(encode(otp, SEALER))

    assert SEALER.open(fields[Field.SPEC]) == otp.spec.model_dump(mode="json")
    assert [value for value in fields.values() if "example.com" in value or "Your code" in value] == []


async def test_the_record_keeps_neither_the_number_nor_the_message_in_clear(
    store: OtpStore, redis_client: redis.Redis
) -> None:
    otp_id = await delivered_with_code(store, code="987654")

    held = str(redis_client.hgetall(f"otp:{otp_id}"))

    assert "33612345678" not in held
    assert "Your code" not in held
    assert "987654" not in held


async def test_the_record_keeps_the_masked_number_for_reports(store: OtpStore, redis_client: redis.Redis) -> None:
    otp_id = await new_otp(store)

    assert redis_client.hget(f"otp:{otp_id}", Field.RECIPIENT_MASK) == "+3361****78"


async def test_the_record_expires_a_grace_period_after_the_code(store: OtpStore, redis_client: redis.Redis) -> None:
    otp_id = await new_otp(store, expiry=100)

    assert 100 < redis_client.ttl(f"otp:{otp_id}") <= 160
