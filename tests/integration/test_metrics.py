"""Prometheus metrics move as the stack sends, fails over, verifies and refuses."""

from tests.support import Api, Stack, random_number, scrape


def worker_metrics(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.env['OTP_WORKER_METRICS_PORT']}/metrics"


async def test_the_api_counts_verify_outcomes_and_shows_queue_depth_without_a_token(api: Api, stack: Stack) -> None:
    failed = ("otp_verifications_total", (("status", "FAILED"),))
    before = (await scrape(stack.api_url + "/metrics")).get(failed, 0)

    await api.verify("3f0e1d2c-0000-4000-8000-000000000000", "123456")
    after = await scrape(stack.api_url + "/metrics")

    assert after[failed] == before + 1
    assert ("otp_queue_depth", (("queue", "otp.send"),)) in after


async def test_each_process_exports_only_its_own_metric_families(api: Api, stack: Stack) -> None:
    await api.delivered(await api.send(recipient=random_number()))

    api_names = {name for name, _ in await scrape(stack.api_url + "/metrics")}
    worker_names = {name for name, _ in await scrape(worker_metrics(stack))}

    assert not any(name.startswith(("otp_vendor", "otp_failovers", "otp_circuit")) for name in api_names)
    assert not any(name.startswith(("otp_verifications", "otp_sends_accepted", "otp_queue")) for name in worker_names)
    assert "process_cpu_seconds_total" in api_names & worker_names


async def test_the_worker_counts_attempts_failovers_and_the_open_circuit(api: Api, stack: Stack) -> None:
    failover = ("otp_failovers_total", (("vendor", "d7"),))
    delivered = ("otp_vendor_attempts_total", (("outcome", "DELIVERED"), ("vendor", "octopush")))
    before = await scrape(worker_metrics(stack))
    await api.fault("d7", no_credit=True)

    await api.delivered(await api.send(recipient=random_number()))
    after = await scrape(worker_metrics(stack))

    assert after[failover] == before.get(failover, 0) + 1
    assert after[delivered] == before.get(delivered, 0) + 1
    assert after[("otp_circuit_open", (("vendor", "d7"),))] == 1
    assert after[("otp_vendor_latency_seconds_count", (("vendor", "octopush"),))] >= 1
