"""A workflow step's deadline, with a poll of the vendor first: the receipt fallback where a vendor documents a
status endpoint (``Provider.polls``).

When a step's deadline has passed and its accepted attempt has no receipt with evidence (a receipt lost on the
way, a vendor slow to post it, a message dropped), the deadline job asks the vendor once, within ``POLL_TIMEOUT``,
before anything else. What the poll says is recorded as that attempt's receipt by the store's receipt step, the
one the callback routes use (``record_receipt``): a callback and a poll for one attempt count once, whichever
comes first. Then the step is decided as for a receipt: delivered stops the workflow (no needless second
message), undelivered sends the next step, no evidence (``sent``, a vendor that does not know the message, no
answer) lets the deadline send it.

Why at the deadline and not before: the poll is needed only by the attempts whose receipt has not come by then,
so one call per such attempt at most; polled earlier (half the deadline, say), most messages would still be in
flight, the poll would say nothing and cost a call per message. The poll delays the next step by at most
``POLL_TIMEOUT``. Deadline jobs hold no lease: a job run twice polls twice and the store counts one receipt.
"""

from __future__ import annotations

import logging
import time

from dispatcher.schemas import DeadlineJob, StepEnd
from dispatcher.store import OtpStore, StepAnswer
from vendors import Provider, ProviderError
from vendors.receipts import Receipt, ReceiptOutcome
from workers.metrics import RECEIPT_LATENCY, RECEIPT_POLLS, ROUTE_RECEIPTS

POLL_TIMEOUT = 2.0
"""Seconds a deadline's poll waits for the vendor's status endpoint at most (the vendor's timeout if shorter)."""
POLL_ERROR = "ERROR"

log = logging.getLogger(__name__)


class Deadlines:
    """Acts on workflow step deadlines for one worker process, polling vendors that document a status endpoint."""

    def __init__(self, store: OtpStore, providers: dict[str, Provider]) -> None:
        self._store = store
        self._providers = providers

    async def end_step(self, job: DeadlineJob, last_step: int) -> tuple[StepEnd, StepAnswer]:
        """Act on ``job``'s step at its deadline (``last_step``: the workflow's last): the reason it ended by
        (DEADLINE, or what a poll learned) and the store's answer."""
        reason = StepEnd.DEADLINE
        awaited = await self._store.awaited_receipt(job.otp_id, job.send_seq, time.time())
        provider = self._providers.get(awaited[0]) if awaited else None
        if awaited is not None and provider is not None and provider.polls:
            receipt = await self._poll(provider, awaited[1])
            if receipt is not None:
                recorded = await self._store.record_receipt(provider.name, receipt, time.time())
                if recorded.first and receipt.outcome is not ReceiptOutcome.NONE:
                    ROUTE_RECEIPTS.labels(
                        provider.name, recorded.channel, recorded.country, receipt.outcome.value
                    ).inc()
                    if recorded.latency_ms is not None:
                        RECEIPT_LATENCY.labels(provider.name, recorded.channel).observe(recorded.latency_ms / 1000)
                    reason = StepEnd.DELIVERED if receipt.outcome is ReceiptOutcome.DELIVERED else StepEnd.UNDELIVERED
                log.info(
                    "otp %s: no receipt by step %d's deadline; %s's status endpoint says %s (%s)",
                    job.otp_id,
                    job.step,
                    provider.name,
                    receipt.outcome,
                    recorded.kind,
                    extra={"otp_id": job.otp_id, "vendor": provider.name},
                )
        answer = await self._store.end_step(job.otp_id, reason, last_step, time.time(), send_seq=job.send_seq)
        return reason, answer

    async def _poll(self, provider: Provider, reference: str) -> Receipt | None:
        """What the vendor says of the message (None: nothing it knows of, or no answer in time)."""
        try:
            receipt = await provider.poll(reference, POLL_TIMEOUT)
        except ProviderError as exc:
            RECEIPT_POLLS.labels(provider.name, POLL_ERROR).inc()
            log.warning("%s's status endpoint did not answer (%s); the deadline acts alone", provider.name, exc.code)
            return None
        RECEIPT_POLLS.labels(provider.name, (receipt.outcome if receipt else ReceiptOutcome.NONE).value).inc()
        return receipt
