"""A worker stopped with SIGTERM while sends are in flight loses none of them."""

import asyncio
import signal

from tests.support import Api, Stack, consume_only, control_app, extra_worker, wait_for

SENDS = 100


async def test_sigterm_with_sends_in_flight_loses_none(api: Api, stack: Stack) -> None:
    log = stack.logs / "doomed-worker.log"

    async def started_delivering() -> bool | None:
        return True if "DELIVERED" in log.read_text() else None

    app = control_app(stack)
    doomed = extra_worker(stack, "doomed")
    try:
        consume_only(app, "doomed@")
        await api.fault("d7", latency_ms=300)
        otp_ids = [await api.send() for _ in range(SENDS)]
        await wait_for(started_delivering)

        doomed.send_signal(signal.SIGTERM)  # mid-stream: some calls in flight, most jobs still queued
        await asyncio.to_thread(doomed.wait, 30)
        consume_only(app, "otp@")
        reports = [await api.delivered(otp_id) for otp_id in otp_ids]
    finally:
        if doomed.poll() is None:
            doomed.kill()
        consume_only(app, "otp@")
        app.close()

    assert doomed.returncode == 0
    assert 0 < log.read_text().count('"outcome": "DELIVERED"') < SENDS  # it was stopped mid-stream
    assert [report["delivered_by"] for report in reports] == ["d7"] * SENDS
    assert all(len({a["send_number"] for a in report["attempts"]}) == 1 for report in reports)
