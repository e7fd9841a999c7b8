"""The Redis primary is killed under a steady load of sends; Sentinel promotes a replica and every process finds
it by itself.

The module runs its own stack: a Redis 7 primary with two replicas and three sentinels (``devtools/redis_ha.py``,
the sentinels hold the primary down after 2 s), the sandbox, the API and two workers, every one of them given
only the sentinels' addresses (``OTP_REDIS_URL=sentinel://...``). It runs twice, on a fresh group each time:
with ``OTP_REDIS__WAIT_REPLICAS=1`` (a send is answered 200 only once a replica holds its record, its job and
its idempotency key: none is lost) and with ``WAIT`` off (replication is asynchronous: the sends answered 200
that the promoted replica never got are counted as lost, and every other one must be delivered once). Nothing of
ours is restarted. The measured times and counts are printed and kept as the test's properties (``-rA`` or the
JUnit XML).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import redis
import redis.sentinel

from devtools.redis_ha import MASTER_NAME, SentinelGroup
from tests.support import Api, Stack, extra_worker, quiet_api, random_number, running_stack, stop, wait_for

pytestmark = pytest.mark.slow

RATE = 50
"""Sends per second, started on a fixed schedule whatever the answers."""
LOAD_SECONDS = 12.0
"""How long the load runs at least; it goes on until a second past ``RESUME_MARGIN`` after the promotion (with
``WAIT`` the promotion counts once a replica is in sync, and a replica that was ahead of the promoted one must
first copy it whole, which Redis 7 starts only after its ``repl-diskless-sync-delay``, 5 s)."""
KILL_AT = 3.0
"""Seconds into the load when the primary is killed (SIGKILL)."""
ANSWER_WITHIN = 2.0
"""Every request, during the switch too, is answered within this (no request hangs)."""
RESUME_MARGIN = 5.0
"""Every send started this long after the sentinels promoted a replica is accepted."""
GIVE_UP = 10.0
"""A request unanswered after this is counted as hung."""
CHECKS_AT_ONCE = 16
SEND_PATH = "/verify/v1/otp/send-otp"


@dataclass(frozen=True)
class Sent:
    started: float
    elapsed: float
    status: int
    """0: no answer within ``GIVE_UP``."""
    recipient: str
    key: str
    body: dict[str, str]
    otp_id: str | None
    refusal: str = ""
    """A 503's error body."""


@pytest.fixture(scope="module", params=[1, 0], ids=["wait-1", "no-wait"])
def wait_replicas(request: pytest.FixtureRequest) -> int:
    """``OTP_REDIS__WAIT_REPLICAS`` of the stack; each value gets a group and a stack of its own."""
    replicas: int = request.param
    return replicas


@pytest.fixture(scope="module")
def group(wait_replicas: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    with SentinelGroup(tmp_path_factory.mktemp(f"sentinel-group-{wait_replicas}"), replicas=2) as started:
        yield started


@pytest.fixture(scope="module")
def stack(group: SentinelGroup, wait_replicas: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = {"master_name": MASTER_NAME, "wait_replicas": wait_replicas, "wait_timeout": 0.5}
    with running_stack(group.url, tmp_path_factory.mktemp("failover-logs"), OTP_REDIS=json.dumps(options)) as stack:
        second = extra_worker(stack, "second")
        try:
            yield stack
        finally:
            stop(second)


@pytest.fixture
async def api(stack: Stack, group: SentinelGroup) -> AsyncIterator[Api]:
    """A client of the module's stack whose Redis client follows the primary through the sentinels."""
    sentinels = redis.sentinel.Sentinel(
        [("127.0.0.1", sentinel.port) for sentinel in group.sentinels], socket_timeout=1.0
    )
    client = sentinels.master_for(MASTER_NAME, decode_responses=True, socket_timeout=1.0)
    async with quiet_api(stack, client) as api:
        yield api
    client.close()


async def send_one(api: Api, started: float) -> Sent:
    recipient, key = random_number(), str(uuid.uuid4())
    body = {"recipient": recipient, "content": "Your code is {}"}
    status, otp_id, refusal = 0, None, ""
    try:
        async with asyncio.timeout(GIVE_UP):
            status, answer = await api.post(SEND_PATH, body, api.headers | {"Idempotency-Key": key})
        otp_id = answer.get("otp_id") if status == 200 else None
        refusal = "" if status == 200 else json.dumps(answer)
    except TimeoutError:
        pass
    return Sent(started, time.monotonic() - started, status, recipient, key, body, otp_id, refusal)


async def steady_load(api: Api, rate: int, until: dict[str, float]) -> list[Sent]:
    """Start ``rate`` sends a second until ``until["end"]`` (a monotonic time, which may move while the load runs),
    each on its own schedule (a slow answer delays no other)."""
    begin = time.monotonic()
    sends = []
    n = 0
    while begin + n / rate < until["end"]:
        await asyncio.sleep(max(0.0, begin + n / rate - time.monotonic()))  # the schedule, not a wait
        sends.append(asyncio.create_task(send_one(api, time.monotonic())))
        n += 1
    return await asyncio.gather(*sends)


async def promoted(group: SentinelGroup, old_port: int, replicas: int) -> float:
    """When the sentinels first name another primary and, for a stack that asks ``replicas`` replicas to confirm
    its writes (``WAIT``), that many replicas follow it and are in sync (a replica that was ahead of the promoted
    one copies it whole first): only then can it take a send."""

    async def new_port() -> int | None:
        port = await asyncio.to_thread(group.master_port)
        return port if port != old_port else None

    port = await wait_for(new_port, within=30)

    async def followed() -> bool | None:
        return True if await asyncio.to_thread(_replicas_of, port) >= replicas else None

    await wait_for(followed, within=30)
    return time.monotonic()


def _replicas_of(port: int) -> int:
    """How many replicas of the server at ``port`` are in sync with it (``state=online``)."""
    with redis.Redis(port=port, socket_timeout=1) as client:
        replication = client.info("replication")
    links = [replication[f"slave{n}"] for n in range(int(replication["connected_slaves"]))]
    return sum(1 for link in links if link["state"] == "online")


async def kill_primary_after(group: SentinelGroup, delay: float, replicas: int) -> tuple[float, float]:
    """SIGKILL the primary ``delay`` seconds into the load; return when, and when a replica was promoted."""
    await asyncio.sleep(delay)  # the moment of the crash, on the load's schedule
    old_port = group.primary.port
    group.primary.kill()
    killed = time.monotonic()
    return killed, await promoted(group, old_port, replicas)


async def record_is_gone(api: Api, sent: Sent) -> bool:
    """Whether the OTP of this accepted send is unknown to the promoted primary (its report is 404)."""
    status, _ = await api.get(f"/verify/v1/report/{sent.otp_id}")
    assert status in {200, 404}, status
    return status == 404


async def check_delivered_once_and_verified(api: Api, sent: Sent, limit: asyncio.Semaphore) -> str | None:
    """Why this accepted send is not delivered exactly once, verified, and replayed by its key, or None."""
    assert sent.otp_id is not None
    async with limit:
        report = await api.delivered(sent.otp_id, within=30)
        messages = await api.messages(sent.recipient)
        if len(messages) != 1 or report["delivered_by"] != "d7":
            return f"{sent.otp_id}: {len(messages)} messages, delivered by {report['delivered_by']}"
        status, replay = await api.post(SEND_PATH, sent.body, api.headers | {"Idempotency-Key": sent.key})
        if (status, replay.get("otp_id")) != (200, sent.otp_id):
            return f"{sent.otp_id}: the replay of its key answered {status} {replay}"
        verified = await api.verify(sent.otp_id, str(messages[0]["code"]))
        if verified != "APPROVED":
            return f"{sent.otp_id}: verify answered {verified}"
        if len(await api.messages(sent.recipient)) != 1:
            return f"{sent.otp_id}: sent again after the replay"
    return None


async def test_the_primary_killed_under_load_every_accepted_otp_is_delivered_once_and_verifies(
    api: Api, group: SentinelGroup, wait_replicas: int, record_property: pytest.RecordProperty
) -> None:
    # Given a steady load of sends with idempotency keys, when the primary is killed mid-run
    until = {"end": time.monotonic() + LOAD_SECONDS}
    load = asyncio.create_task(steady_load(api, RATE, until))
    killed, promoted_at = await kill_primary_after(group, KILL_AT, wait_replicas)
    until["end"] = max(until["end"], promoted_at + RESUME_MARGIN + 1.0)
    sends = await load
    assert await asyncio.to_thread(group.failovers) == 1, "the sentinels failed over more than once"

    # Then every request was answered, 200 or 503, within two seconds
    slow = [(sent.status, round(sent.elapsed, 2)) for sent in sends if sent.elapsed > ANSWER_WITHIN]
    assert not slow, f"answers slower than {ANSWER_WITHIN} s: {slow}"
    assert {sent.status for sent in sends} <= {200, 503}
    refused = [sent for sent in sends if sent.status == 503]
    assert refused, "no request saw the switch"
    # and the service resumed by itself within (detection + promotion) + 5 s
    late = [sent for sent in sends if sent.started > promoted_at + RESUME_MARGIN and sent.status != 200]
    assert not late, (
        f"promoted {promoted_at - killed:.2f} s after the kill; refused later: "
        f"{[(round(sent.started - killed, 2), sent.refusal) for sent in late][:5]} and {max(0, len(late) - 5)} more"
    )
    assert any(sent.started > promoted_at + RESUME_MARGIN for sent in sends), (
        f"the load ended too soon to tell: promoted {promoted_at - killed:.2f} s after the kill, "
        f"the load ended {sends[-1].started - killed:.2f} s after it"
    )
    resumed = min(sent.started for sent in sends if sent.status == 200 and sent.started > refused[-1].started)
    # and with WAIT, no OTP that got a 200 is lost; without it, those lost were accepted just before the kill
    accepted = [sent for sent in sends if sent.status == 200]
    missing = await asyncio.gather(*(record_is_gone(api, sent) for sent in accepted))
    gone = [sent for sent, is_gone in zip(accepted, missing, strict=True) if is_gone]
    if wait_replicas:
        assert gone == []
    assert all(killed - ANSWER_WITHIN < sent.started < killed for sent in gone), [
        round(sent.started - killed, 3) for sent in gone
    ]
    # and every other OTP that got a 200 is delivered once, by the vendor whose breaker stayed closed, its key
    # replays it, and its code verifies
    kept = [sent for sent in accepted if sent not in gone]
    limit = asyncio.Semaphore(CHECKS_AT_ONCE)
    problems = await asyncio.gather(*(check_delivered_once_and_verified(api, sent, limit) for sent in kept))
    assert [problem for problem in problems if problem] == []

    measures = {
        "wait_replicas": wait_replicas,
        "sends": len(sends),
        "accepted": len(accepted),
        "accepted_then_lost": len(gone),
        "refused": len(refused),
        "promotion_after_kill_s": round(promoted_at - killed, 2),
        "resumed_after_promotion_s": round(resumed - promoted_at, 2),
        "slowest_answer_s": round(max(sent.elapsed for sent in sends), 2),
    }
    for name, value in measures.items():
        record_property(name, value)
    print("failover:", json.dumps(measures))
