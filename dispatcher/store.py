"""OTP state in Redis: create, resend bookkeeping, atomic verification, delivery progress, attempt log.

One OTP is one hash (``otp:<id>``) and one list of attempts (``otp:<id>:attempts``), both expiring a
grace period after the code does. Fields that must never be read at rest (number, message, postback
URLs) are sealed; the code itself is never stored, only its keyed hash. Every read-check-write runs
as one Lua script, so concurrent API processes and workers cannot interleave inside it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from config import OtpType
from dispatcher.constants import attempts_key, lease_key, record_key
from dispatcher.errors import ResendRefused, ServiceUnavailable, UnknownOtp
from dispatcher.schemas import Attempt, OtpReport, OtpStatus, VerifyStatus
from dispatcher.sealing import Sealer
from vendors.phone import mask_number


@dataclass(frozen=True, slots=True)
class NewOtp:
    """Everything recorded when an OTP is accepted, defaults already applied."""

    otp_id: str
    recipient: str
    recipient_index: str
    """The number's keyed hash, for per-number limits."""
    prefix: str
    """The number's range (leading digits), for the SMS-pumping guard."""
    originator: str
    content: str | None
    template_id: int | None
    channel: str
    data_coding: str
    otp_type: OtpType
    code_length: int
    expiry: int
    resend_delay: int
    resend_limit: int
    max_wrong_attempts: int
    success_url: str | None
    failure_url: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """What a worker needs to deliver the current send of one OTP."""

    otp_id: str
    recipient: str
    originator: str
    content: str | None
    template_id: int | None
    channel: str
    data_coding: str
    otp_type: OtpType
    code_length: int
    resend_delay: int
    resend_limit: int
    expires_at: float
    send_seq: int
    delivered_seq: int
    status: OtpStatus
    route_first: str
    chain_pos: int
    vendor_tries: int
    vendor: str
    reference: str
    success_url: str | None
    failure_url: str | None


class ClaimKind(StrEnum):
    RUN = "RUN"
    """The run may call vendors."""
    CRASHED = "CRASHED"
    """As RUN, but the previous run of this OTP died mid-way (its outcome at its vendor is unknown)."""
    BUSY = "BUSY"
    """Another run holds the lease; look again later."""
    SKIP = "SKIP"
    """Nothing to do: the OTP is gone, final, delivered or expired, or a newer job replaced this one."""
    POISON = "POISON"
    """Runs of this OTP kept dying; it is now FAILED and no vendor is called again."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a job run's claim on its OTP: with ``state`` and ``lease`` when it may run."""

    kind: ClaimKind
    expires_at: float = 0.0
    state: DeliveryState | None = None
    lease: str = ""


@dataclass(frozen=True, slots=True)
class VerifyTicket:
    """A decided status, or the vendor to ask (an attempt is reserved for it)."""

    decided: VerifyStatus | None
    vendor: str = ""
    reference: str = ""


@dataclass(frozen=True, slots=True)
class Resent:
    resend_count: int
    expires_at: float
    job_seq: int
    """The send job to queue for the new send (older jobs of this OTP are now stale)."""


_CREATE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

_RESEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'UNKNOWN'} end
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'resend_count', 'resend_limit',
                     'resend_delay', 'last_send_at', 'delivered_by')
local now = tonumber(ARGV[1])
if now >= tonumber(f[2]) then return {'EXPIRED'} end
if f[1] == 'VERIFIED' then return {'VERIFIED'} end
if tonumber(f[3]) >= tonumber(f[4]) then return {'LIMIT'} end
if now - tonumber(f[6]) < tonumber(f[5]) then return {'TOO_SOON'} end
local count = redis.call('HINCRBY', KEYS[1], 'resend_count', 1)
redis.call('HINCRBY', KEYS[1], 'send_seq', 1)
local job = redis.call('HINCRBY', KEYS[1], 'job_seq', 1)
redis.call('HSET', KEYS[1], 'status', 'OPEN', 'last_send_at', ARGV[1], 'route_first', f[7],
           'chain_pos', 0, 'vendor_tries', 0, 'failure', '')
return {'OK', tostring(count), f[2], tostring(job)}
"""

_VERIFY = """
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'verify_attempts', 'max_attempts',
                     'vendor', 'reference', 'code_hashes')
if not f[1] then return {'FAILED'} end
if f[1] == 'VERIFIED' then return {'ALREADY_VERIFIED'} end
if tonumber(ARGV[1]) >= tonumber(f[2]) then return {'EXPIRED'} end
if tonumber(f[3]) >= tonumber(f[4]) then return {'FAILED'} end
local given, matched = ARGV[2], false
for stored in string.gmatch(f[7], '[^,]+') do
  local diff = (#stored == #given) and 0 or 1
  for i = 1, math.min(#stored, #given) do
    diff = bit.bor(diff, bit.bxor(stored:byte(i), given:byte(i)))
  end
  matched = matched or diff == 0
end
if matched and f[1] == 'OPEN' then
  redis.call('HSET', KEYS[1], 'status', 'VERIFIED', 'verified_at', ARGV[1])
  return {'APPROVED'}
end
redis.call('HINCRBY', KEYS[1], 'verify_attempts', 1)
if matched or f[6] == '' then return {'FAILED'} end
return {'VENDOR', f[5], f[6]}
"""

_VERIFY_SETTLE = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'VERIFIED' then return 'ALREADY_VERIFIED' end
if ARGV[1] ~= '1' or status ~= 'OPEN' then return 'FAILED' end
redis.call('HSET', KEYS[1], 'status', 'VERIFIED', 'verified_at', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'verify_attempts', -1)
return 'APPROVED'
"""

_VERIFY_REFUND = """
if redis.call('HGET', KEYS[1], 'status') == 'OPEN' then
  redis.call('HINCRBY', KEYS[1], 'verify_attempts', -1)
end
return 1
"""

_CLAIM = """
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'send_seq', 'delivered_seq', 'job_seq', 'running')
if f[1] ~= 'OPEN' or tonumber(f[4]) >= tonumber(f[3]) or tonumber(ARGV[1]) >= tonumber(f[2]) then return {'SKIP'} end
if tonumber(ARGV[2]) < tonumber(f[5]) then return {'SKIP'} end
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return {'BUSY', f[2]} end
local kind = 'RUN'
if f[6] == '1' then
  kind = 'CRASHED'
  if redis.call('HINCRBY', KEYS[1], 'crashes', 1) >= tonumber(ARGV[5]) then
    kind = 'POISON'
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'running', 0, 'failure', ARGV[6])
    if tonumber(f[4]) == 0 then redis.call('HSET', KEYS[1], 'status', 'FAILED') end
  end
end
if kind ~= 'POISON' then redis.call('HSET', KEYS[1], 'running', 1, 'job_seq', ARGV[2]) end
return {kind, f[2], redis.call('HGETALL', KEYS[1])}
"""

_END_RUN = """
local function end_run(record, lease, token)
  if token == '' then return end
  local holder = redis.call('GET', lease)
  if holder and holder ~= token then return end
  redis.call('DEL', lease)
  if redis.call('EXISTS', record) == 1 then redis.call('HSET', record, 'running', 0) end
end
"""
"""A run's last write also gives up its lease, saving a round trip (an empty token: the run goes on). A
lease that ran out while its run was cut off from Redis still ends here: the run is over, not dead; only
a lease now held by another run is left alone."""

_RELEASE = (
    _END_RUN
    + """
end_run(KEYS[1], KEYS[2], ARGV[1])
return 1
"""
)

_SAVE_PROGRESS = (
    _END_RUN
    + """
local job = 0
if redis.call('HGET', KEYS[1], 'send_seq') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'chain_pos', ARGV[2], 'vendor_tries', ARGV[3])
  if ARGV[4] == '1' then job = redis.call('HINCRBY', KEYS[1], 'job_seq', 1)
  else job = tonumber(redis.call('HGET', KEYS[1], 'job_seq')) end
end
end_run(KEYS[1], KEYS[2], ARGV[5])
return job
"""
)

_PUSH_ATTEMPT = """
local function push_attempt(record, log, attempt)
  redis.call('RPUSH', log, attempt)
  local ttl = redis.call('TTL', record)
  if ttl > 0 then redis.call('EXPIRE', log, ttl) end
end
"""

_RECORD_ATTEMPT = (
    _PUSH_ATTEMPT
    + """
push_attempt(KEYS[1], KEYS[2], ARGV[1])
return 1
"""
)

_MARK_DELIVERED = (
    _PUSH_ATTEMPT
    + _END_RUN
    + """
push_attempt(KEYS[1], KEYS[2], ARGV[4])
local done = 0
local f = redis.call('HMGET', KEYS[1], 'status', 'delivered_seq')
if f[1] == 'OPEN' and tonumber(f[2]) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'delivered_seq', ARGV[1], 'delivered_by', ARGV[2], 'failure', '')
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'vendor', ARGV[2], 'reference', ARGV[3]) end
  done = 1
end
end_run(KEYS[1], KEYS[3], ARGV[5])
return done
"""
)

_ADD_CODE_HASH = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'OPEN' then return 0 end
local kept = {ARGV[1]}
for stored in string.gmatch(redis.call('HGET', KEYS[1], 'code_hashes'), '[^,]+') do
  if #kept < tonumber(ARGV[2]) then table.insert(kept, stored) end
end
redis.call('HSET', KEYS[1], 'code_hashes', table.concat(kept, ','))
return 1
"""

_MARK_FAILED = (
    _END_RUN
    + """
local f = redis.call('HMGET', KEYS[1], 'status', 'send_seq', 'delivered_seq')
if f[1] == 'OPEN' and f[2] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'failure', ARGV[2])
  if tonumber(f[3]) == 0 then redis.call('HSET', KEYS[1], 'status', 'FAILED') end
end
end_run(KEYS[1], KEYS[2], ARGV[3])
return 1
"""
)

MAX_CODES = 5
"""Codes of one OTP kept verifiable at once (each send or uncertain retry may have reached the phone)."""
MAX_REDIS_CONNECTIONS = 256
"""Connections one process's pool opens at most."""
FIRST_JOB = 1
"""The job number of an OTP's first send job."""
MAX_CRASHES = 3
"""Runs of one OTP that may die mid-way (worker killed, out of memory) before it is failed for good."""

_POISON_REASON = f"delivery runs died {MAX_CRASHES} times (worker killed or out of memory)"

_RESEND_REFUSALS = {
    "EXPIRED": ("OTP_EXPIRED", "The OTP has expired; send a new one."),
    "VERIFIED": ("OTP_ALREADY_VERIFIED", "The OTP has already been verified."),
    "LIMIT": ("RESEND_LIMIT_REACHED", "The OTP was resent as many times as its retry_count allows."),
    "TOO_SOON": ("RESEND_TOO_SOON", "Wait retry_delay seconds after the last send before asking again."),
}


def connect(url: str, timeout: float) -> aioredis.Redis:
    """A pooled client whose every command gives up after ``timeout`` seconds, so callers never hang.

    At most ``MAX_REDIS_CONNECTIONS`` connections; a command beyond them waits (within ``timeout``)
    for a free one rather than failing, so a burst of concurrent runs queues instead of erroring. A
    command whose pooled connection turns out closed (Redis restarted since it was opened) is sent once
    more on a new connection, so the first requests after Redis returns do not fail; a timeout is not
    retried.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        health_check_interval=30,
        max_connections=MAX_REDIS_CONNECTIONS,
        timeout=timeout,
    )
    return aioredis.Redis.from_pool(pool)


class OtpStore:
    """All OTP reads and writes. Redis failures surface as ``ServiceUnavailable``."""

    def __init__(self, redis: aioredis.Redis, sealer: Sealer, grace: int) -> None:
        self._redis = redis
        self._sealer = sealer
        self._grace = grace
        self._create = redis.register_script(_CREATE)
        self._resend = redis.register_script(_RESEND)
        self._verify = redis.register_script(_VERIFY)
        self._verify_settle = redis.register_script(_VERIFY_SETTLE)
        self._verify_refund = redis.register_script(_VERIFY_REFUND)
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._save_progress = redis.register_script(_SAVE_PROGRESS)
        self._mark_delivered = redis.register_script(_MARK_DELIVERED)
        self._record_attempt = redis.register_script(_RECORD_ATTEMPT)
        self._add_code_hash = redis.register_script(_ADD_CODE_HASH)
        self._mark_failed = redis.register_script(_MARK_FAILED)

    async def close(self) -> None:
        await self._redis.aclose()

    async def queue_depths(self, queues: tuple[str, ...]) -> dict[str, int]:
        """Length of each Celery queue's list (kombu's Redis transport keeps a queue as one list)."""
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue)
            lengths = await pipe.execute()
        return dict(zip(queues, (int(length) for length in lengths), strict=True))

    async def ping(self) -> None:
        async with redis_errors():
            await self._redis.ping()

    # producer side ---------------------------------------------------------------------------------

    async def create(self, otp: NewOtp) -> float:
        """Record a new OTP awaiting its first send; returns when it expires (epoch seconds)."""
        expires_at = otp.created_at + otp.expiry
        sealed = self._sealer.seal(
            {
                "recipient": otp.recipient,
                "content": otp.content,
                "success_url": otp.success_url,
                "failure_url": otp.failure_url,
            }
        )
        fields: dict[FieldT, EncodableT] = {
            "status": OtpStatus.OPEN.value,
            "sealed": sealed,
            "recipient_mask": mask_number(otp.recipient),
            "recipient_index": otp.recipient_index,
            "prefix": otp.prefix,
            "originator": otp.originator,
            "template_id": "" if otp.template_id is None else otp.template_id,
            "channel": otp.channel,
            "data_coding": otp.data_coding,
            "otp_type": otp.otp_type,
            "code_length": otp.code_length,
            "created_at": otp.created_at,
            "expires_at": expires_at,
            "last_send_at": otp.created_at,
            "resend_delay": otp.resend_delay,
            "resend_limit": otp.resend_limit,
            "resend_count": 0,
            "max_attempts": otp.max_wrong_attempts,
            "verify_attempts": 0,
            "send_seq": 1,
            "delivered_seq": 0,
            "job_seq": FIRST_JOB,
            "running": 0,
            "crashes": 0,
            "route_first": "",
            "chain_pos": 0,
            "vendor_tries": 0,
            "delivered_by": "",
            "vendor": "",
            "reference": "",
            "code_hashes": "",
            "failure": "",
        }
        ttl = otp.expiry + self._grace
        args: list[EncodableT] = [ttl, *(item for pair in fields.items() for item in pair)]
        async with redis_errors():
            await self._create(keys=[record_key(otp.otp_id)], args=args)
        return expires_at

    async def discard(self, otp_id: str) -> None:
        """Forget an OTP whose send job could not be queued (the caller was told it failed)."""
        async with redis_errors():
            await self._redis.delete(record_key(otp_id), attempts_key(otp_id))

    async def resend(self, otp_id: str, now: float) -> Resent:
        """Count one more send if the OTP's resend rules allow it; else ``ResendRefused`` or ``UnknownOtp``."""
        async with redis_errors():
            answer = await self._resend(keys=[record_key(otp_id)], args=[now])
        if answer[0] == "UNKNOWN":
            raise UnknownOtp("No OTP exists with this otp_id.")
        if answer[0] != "OK":
            code, message = _RESEND_REFUSALS[answer[0]]
            raise ResendRefused(message, code=code)
        return Resent(resend_count=int(answer[1]), expires_at=float(answer[2]), job_seq=int(answer[3]))

    async def recipient_of(self, otp_id: str) -> tuple[str, str]:
        """The blinded number and the number range of an OTP (for the limits a resend counts against)."""
        async with redis_errors():
            index, prefix = await self._redis.hmget(record_key(otp_id), ["recipient_index", "prefix"])
        if index is None:
            raise UnknownOtp("No OTP exists with this otp_id.")
        return str(index), str(prefix)

    async def verify(self, otp_id: str, code_digest: str, now: float) -> VerifyTicket:
        """Evaluate one code, atomically and within the OTP's attempt budget.

        The digest is compared in constant time with the keyed hash of every code the dispatcher
        generated for this OTP. If none matches and the latest delivery was by a vendor that checks
        its own codes, one attempt is reserved and that vendor's reference returned: the caller asks
        the vendor, then calls ``settle_vendor_verify``. An unknown id fails like a wrong code.
        """
        async with redis_errors():
            answer = await self._verify(keys=[record_key(otp_id)], args=[now, code_digest])
        if answer[0] == "VENDOR":
            return VerifyTicket(decided=None, vendor=answer[1], reference=answer[2])
        return VerifyTicket(decided=VerifyStatus(answer[0]))

    async def settle_vendor_verify(self, otp_id: str, approved: bool, now: float) -> VerifyStatus:
        """Record the vendor's answer: of all concurrent approved codes exactly one is APPROVED."""
        async with redis_errors():
            answer = await self._verify_settle(keys=[record_key(otp_id)], args=[int(approved), now])
        return VerifyStatus(answer)

    async def refund_verify(self, otp_id: str) -> None:
        """Give back an attempt whose code could not be evaluated (the vendor did not answer)."""
        async with redis_errors():
            await self._verify_refund(keys=[record_key(otp_id)])

    async def report(self, otp_id: str, now: float) -> OtpReport:
        """The OTP's status and every delivery attempt, for the status endpoint."""
        async with redis_errors(), self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(record_key(otp_id))
            pipe.lrange(attempts_key(otp_id), 0, -1)
            record, attempts = await pipe.execute()
        if not record:
            raise UnknownOtp("No OTP exists with this otp_id.")
        expires_at = float(record["expires_at"])
        return OtpReport(
            otp_id=otp_id,
            status=_status(record["status"], expires_at, now),
            recipient=record["recipient_mask"],
            created_at=_time(float(record["created_at"])),
            expires_at=_time(expires_at),
            expiry=max(0, int(expires_at - now)),
            resend_count=int(record["resend_count"]),
            delivered_by=record["delivered_by"] or None,
            failure_reason=record["failure"] or None,
            attempts=[Attempt.model_validate_json(item) for item in attempts],
        )

    # worker side -----------------------------------------------------------------------------------

    async def delivery_state(self, otp_id: str) -> DeliveryState | None:
        """The OTP as a worker delivers it (number and message unsealed), or None once it is gone."""
        async with redis_errors():
            record = cast("dict[str, str]", await self._redis.hgetall(record_key(otp_id)))
        return self._delivery_state(otp_id, record) if record else None

    async def claim(self, otp_id: str, job_seq: int, lease_seconds: float, now: float) -> Claim:
        """Claim the right to call vendors for the current send of an OTP, for one run of job ``job_seq``.

        One step in Redis: nothing to do once the send is delivered, final or expired, or when a newer
        job of the OTP exists (so a job the broker delivered twice runs once); busy while another run
        holds the lease; and when the previous run died holding it (the lease ran out, never released),
        that is counted, and the OTP fails for good after ``MAX_CRASHES`` of them.
        """
        token = secrets.token_hex(8)
        keys = [record_key(otp_id), lease_key(otp_id)]
        args: list[EncodableT] = [now, job_seq, token, int(lease_seconds * 1000), MAX_CRASHES, _POISON_REASON]
        async with redis_errors():
            answer = await self._claim(keys=keys, args=args)
        kind = ClaimKind(answer[0])
        if kind is ClaimKind.SKIP:
            return Claim(kind)
        if kind is ClaimKind.BUSY:
            return Claim(kind, expires_at=float(answer[1]))
        fields = answer[2]
        record = dict(zip(fields[::2], fields[1::2], strict=True))
        state = self._delivery_state(otp_id, record)
        return Claim(kind, expires_at=state.expires_at, state=state, lease="" if kind is ClaimKind.POISON else token)

    async def release(self, otp_id: str, lease: str) -> None:
        """End a run: give up its lease (a run that never gets here is counted as crashed by the next one)."""
        async with redis_errors():
            await self._release(keys=[record_key(otp_id), lease_key(otp_id)], args=[lease])

    async def save_progress(
        self, otp_id: str, send_seq: int, chain_pos: int, vendor_tries: int, *, next_job: bool = False, lease: str = ""
    ) -> int:
        """Remember where in the provider chain the current send stands; with ``next_job``, a retry is
        about to be queued and earlier jobs of the OTP become stale. Returns the job number to queue,
        0 when a resend replaced this send (its own job carries on). With ``lease``, the run ends here."""
        keys = [record_key(otp_id), lease_key(otp_id)]
        async with redis_errors():
            return int(
                await self._save_progress(keys=keys, args=[send_seq, chain_pos, vendor_tries, int(next_job), lease])
            )

    def _delivery_state(self, otp_id: str, record: dict[str, str]) -> DeliveryState:
        opened = self._sealer.open(record["sealed"])
        return DeliveryState(
            otp_id=otp_id,
            recipient=str(opened["recipient"]),
            originator=record["originator"],
            content=cast("str | None", opened["content"]),
            success_url=cast("str | None", opened["success_url"]),
            failure_url=cast("str | None", opened["failure_url"]),
            template_id=int(record["template_id"]) if record["template_id"] else None,
            channel=record["channel"],
            data_coding=record["data_coding"],
            otp_type=cast(OtpType, record["otp_type"]),
            code_length=int(record["code_length"]),
            resend_delay=int(record["resend_delay"]),
            resend_limit=int(record["resend_limit"]),
            expires_at=float(record["expires_at"]),
            send_seq=int(record["send_seq"]),
            delivered_seq=int(record["delivered_seq"]),
            status=OtpStatus(record["status"]),
            route_first=record["route_first"],
            chain_pos=int(record["chain_pos"]),
            vendor_tries=int(record["vendor_tries"]),
            vendor=record["vendor"],
            reference=record["reference"],
        )

    async def record_attempt(self, otp_id: str, attempt: Attempt) -> None:
        """Append one failed vendor call to the attempt log; the log expires with the record."""
        async with redis_errors():
            await self._record_attempt(
                keys=[record_key(otp_id), attempts_key(otp_id)], args=[attempt.model_dump_json()]
            )

    async def add_code_hash(self, otp_id: str, code_hash: str) -> None:
        """Make a code the dispatcher generated verifiable, before it is handed to a vendor (it may arrive).

        Every such code of the OTP stays valid until it expires or is verified (resends and retries
        whose outcome is unknown included), up to the ``MAX_CODES`` most recent.
        """
        async with redis_errors():
            await self._add_code_hash(keys=[record_key(otp_id)], args=[code_hash, MAX_CODES])

    async def mark_delivered(
        self, otp_id: str, send_seq: int, reference: str, attempt: Attempt, lease: str = ""
    ) -> bool:
        """Log the successful ``attempt`` and, in the same step, record its vendor as having delivered
        this send; False if a later send was delivered first. With ``lease``, the run ends here.

        ``reference`` is given only by vendors that check their own codes: the latest such vendor is
        the one verification is forwarded to.
        """
        keys = [record_key(otp_id), attempts_key(otp_id), lease_key(otp_id)]
        args: list[EncodableT] = [send_seq, attempt.vendor, reference, attempt.model_dump_json(), lease]
        async with redis_errors():
            done = await self._mark_delivered(keys=keys, args=args)
        return bool(done)

    async def mark_failed(self, otp_id: str, send_seq: int, reason: str, lease: str = "") -> None:
        """This send reached nobody; the OTP is FAILED unless an earlier send was delivered. With
        ``lease``, the run ends here."""
        async with redis_errors():
            await self._mark_failed(keys=[record_key(otp_id), lease_key(otp_id)], args=[send_seq, reason, lease])


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turns any Redis failure inside it into ``ServiceUnavailable``."""
    try:
        yield
    except RedisError as exc:
        raise ServiceUnavailable("The OTP store (Redis) is not answering; try again shortly.") from exc


def _status(stored: str, expires_at: float, now: float) -> OtpStatus:
    status = OtpStatus(stored)
    if status is OtpStatus.OPEN and now >= expires_at:
        return OtpStatus.EXPIRED
    return status


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
