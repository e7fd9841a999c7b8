"""Names shared across processes: task and queue names, Redis key prefixes. Defined here only."""

SEND_TASK = "otp.send"
SEND_QUEUE = "otp.send"
DEADLINE_TASK = "otp.deadline"
"""A workflow step's deadline (``[otp_id, step, send number]``), on the send queue."""
POSTBACK_TASK = "otp.postback"
POSTBACK_QUEUE = "otp.postback"
"""Postbacks have their own queue, so a slow receiver never delays a send."""
QUEUES = (SEND_QUEUE, POSTBACK_QUEUE)

KEY_PREFIX = "otp:"
"""Every key the dispatcher writes starts with this; the broker's own keys do not."""


DUE_KEY = f"{KEY_PREFIX}due"
"""The due index: every OTP whose current send is not final, scored by the time a run must have taken its job
by (the sweeper queues again the jobs that were lost). An otp_id never reads ``due`` (ids are hex and dashes)."""
POSTBACKS_DUE_KEY = f"{KEY_PREFIX}postbacks-due"
"""Postbacks owed (``<otp_id>:<event>``), scored by when they are due (sent again by the sweeper)."""
DEADLINES_KEY = f"{KEY_PREFIX}deadlines"
"""Workflow steps waiting for a delivered receipt, scored by when their deadline job must have run by (the
sweeper queues again the deadline jobs that were lost)."""
SWEEPER_KEY = f"{KEY_PREFIX}sweeper"
"""Held by the worker process sweeping now, so one sweeps at a time."""
RECORD_PREFIX = KEY_PREFIX
"""An OTP's record is this prefix and its otp_id (a script that finds an OTP by id builds the key so)."""


def record_key(otp_id: str) -> str:
    """The hash holding one OTP's state."""
    return f"{RECORD_PREFIX}{otp_id}"


def attempts_key(otp_id: str) -> str:
    """The list of delivery attempts of one OTP, oldest first."""
    return f"{KEY_PREFIX}{otp_id}:attempts"


def receipts_key(otp_id: str) -> str:
    """The delivery receipts of one OTP's attempts: a hash by attempt index (the position in its attempts list)."""
    return f"{KEY_PREFIX}{otp_id}:receipts"


def receipt_ref_key(vendor: str, reference: str) -> str:
    """Which attempt of which OTP a vendor's reference names (``<otp_id> <attempt index> <send> <accepted at>``),
    written when the vendor accepted it and expiring with the OTP; never a number."""
    return f"{KEY_PREFIX}rx:{vendor}:{reference}"


def early_receipt_key(vendor: str, reference: str) -> str:
    """A receipt that arrived before its attempt was recorded, kept a little while for the attempt to claim."""
    return f"{KEY_PREFIX}rx-early:{vendor}:{reference}"


def lease_key(otp_id: str) -> str:
    """Held by the worker currently calling a vendor for this OTP."""
    return f"{KEY_PREFIX}{otp_id}:lease"


def breaker_key(vendor: str) -> str:
    """The circuit breaker of one vendor, shared by every worker."""
    return f"{KEY_PREFIX}breaker:{vendor}"


def limit_key(kind: str, subject: str) -> str:
    """A rate-limit counter (kind: recipient, token, ip, prefix); subjects are blinded or partial, never a number."""
    return f"{KEY_PREFIX}limit:{kind}:{subject}"


def prefix_block_key(prefix: str) -> str:
    """Present while a number range is blocked by the SMS-pumping guard."""
    return f"{KEY_PREFIX}block:{prefix}"


def in_flight_key(recipient_index: str) -> str:
    """The open OTP of one number (only with ``limits.one_in_flight``)."""
    return f"{KEY_PREFIX}open:{recipient_index}"


def idempotency_key(caller: str, key: str) -> str:
    """The remembered answer to one Idempotency-Key of one caller."""
    return f"{KEY_PREFIX}idem:{caller}:{key}"


def check_key(otp_id: str, code_digest: str) -> str:
    """Present while one request asks the vendor about this code (its keyed hash) of this OTP; the others wait."""
    return f"{KEY_PREFIX}{otp_id}:check:{code_digest}"


REPLICATION_FENCE_KEY = f"{KEY_PREFIX}replication-fence"
"""Counted up before each ``WAIT``: a write of the waiting connection's own, after the writes it confirms."""
EXPIRING_KEY = f"{KEY_PREFIX}expiring"
"""Every OTP not yet swept for expiry, scored by when its code expires: once it has, the sweeper debits the attempts
of one that was not verified (each exactly once: the script that takes it from here debits it)."""
STATS_PREFIX = f"{KEY_PREFIX}stats:"
"""The outcome counters of one minute by route (``<prefix><minute since the epoch>``), a hash of
``<vendor>|<channel>|<country>|<outcome>`` to counts (``dispatcher/store/stats.py`` reads them)."""
STATS_KEEP = 25 * 3600
"""Seconds a minute's counters are kept after that minute ends: the last day's window, and an hour to spare."""

SCORES_PREFIX = f"{KEY_PREFIX}score:"
"""Routing evidence of one country, channel and vendor (``otp:score:<country>:<channel>:<vendor>``): a hash of
counts by bucket of OTP creation time and kind (``<bucket>:s`` accepted, ``:c`` converted, ``:u`` undelivered)."""
SCORES_INDEX = f"{KEY_PREFIX}scores"
"""The set of every routing evidence hash, read by each worker's scoreboard (never a scan of the keyspace)."""
SCORE_BUCKET = 10
"""Seconds of OTP creation time one bucket of routing evidence counts."""
ROUTING_OVERRIDES_KEY = f"{KEY_PREFIX}routing-overrides"
"""Operators' pins and bans: a hash of ``<country>|<channel or *>|<vendor>`` to ``PIN`` or ``BAN``."""
SCORE_KEEP = 90_000
"""Seconds a routing evidence hash outlives its last write (more than the longest window, a day)."""
