"""The scenarios of issue #7, run against the dispatcher's stack through its HTTP API and the sandbox.

- ``peak``: end-to-end throughput (send-otp accepted, vendor called, delivery stored), closed-loop load
  held back when more than ``max_backlog`` sends wait, counted by the sandbox's D7 call counter over the
  steady part of the run (the first tenth is warm-up), plus a check that sampled reports say delivered;
- ``latency``: an open-loop load at a fixed rate; send-otp and verify-otp (right and wrong codes) as the
  client sees them, and enqueue-to-vendor-call from the reports (first attempt's start minus creation);
- ``memory``: peak resident memory of the worker processes while ``sends`` sends wait on a slow vendor.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from bench import procs
from bench.load import LoadPlan, run_load
from bench.progress import Progress
from bench.report import percentiles
from bench.stack import BenchStack, Cpu, RedisTraffic, Sandbox

SAMPLE_INTERVAL = 0.2
WARM_UP_SHARE = 0.1
SETTLE_SECONDS = 60.0
PEAK_REPORTS = 200
"""Reports read after a peak run, to check that deliveries were stored."""
LATENCY_REPORTS = 3000
"""Reports read after the latency run, for enqueue-to-vendor-call times."""
REPORT_CONCURRENCY = 16


@dataclass(frozen=True)
class LoadShape:
    processes: int = 1
    """Generator processes."""
    concurrency: int = 128
    """Closed loop: requests in flight at once."""
    max_backlog: int = 1000


async def peak(
    name: str,
    stack: BenchStack,
    sandbox: Sandbox,
    shape: LoadShape,
    latency_ms: float,
    requests: int,
    seconds: float,
    progress: Progress,
) -> dict[str, Any]:
    progress.begin(name)
    await _fresh(stack, sandbox, latency_ms)
    plan = LoadPlan(
        stack.api_url,
        stack.sandbox_url,
        stack.token,
        max_requests=requests,
        max_seconds=seconds,
        concurrency=shape.concurrency,
        max_backlog=shape.max_backlog,
    )
    cpu, traffic = Cpu(stack.pids()), RedisTraffic(stack.redis_url)
    load = asyncio.create_task(run_load(plan, shape.processes))
    timeline: list[tuple[float, int]] = []
    started = time.monotonic()
    while not load.done():
        timeline.append((time.monotonic() - started, await sandbox.vendor_calls()))
        elapsed, delivered = timeline[-1]
        progress.update(max(elapsed / seconds, delivered / requests), f"{delivered} delivered")
        await asyncio.sleep(SAMPLE_INTERVAL)
    result = await load
    timeline.append((time.monotonic() - started, await sandbox.vendor_calls()))
    used, redis_used = cpu.used(result.cpu_seconds), traffic.used()
    throughput, window = _steady_rate(timeline)
    reports = await fetch_reports(stack, _spread(result.otp_ids, PEAK_REPORTS))
    delivered = sum(1 for report in reports if report.get("delivered_by"))
    summary: dict[str, Any] = {
        "kind": "scenario",
        "parameters": {
            "vendor_latency_ms": latency_ms,
            "max_requests": requests,
            "max_seconds": seconds,
            "load_processes": shape.processes,
            "load_concurrency": shape.concurrency,
            "max_backlog": shape.max_backlog,
        },
        "throughput": throughput,
        "measured_seconds": round(window, 2),
        "accepted": result.sent,
        "load_seconds": round(result.wall_seconds, 2),
        "accepted_per_second": round(result.sent / max(result.wall_seconds, 1e-9), 1),
        "refused": result.refused,
        "vendor_calls": timeline[-1][1],
        "queued_at_end": stack.queued(),
        "send_ms": percentiles(result.send_ms),
        "reports_checked": len(reports),
        "reports_delivered": delivered,
        "cpu": used,
        "redis_traffic": redis_used,
        "load_generator_cpu_cores": round(result.cpu_seconds / max(result.wall_seconds, 1e-9), 2),
        "timeline": [(round(t, 2), count) for t, count in timeline],
    }
    progress.end(f"{throughput:.0f} OTP/s delivered ({delivered}/{len(reports)} sampled reports delivered)")
    return summary


async def latency(
    name: str,
    stack: BenchStack,
    sandbox: Sandbox,
    shape: LoadShape,
    rate: float,
    seconds: float,
    verify_after: float,
    progress: Progress,
) -> dict[str, Any]:
    progress.begin(name)
    await _fresh(stack, sandbox, 0.0)
    requests = max(1, int(rate * seconds))
    plan = LoadPlan(
        stack.api_url,
        stack.sandbox_url,
        stack.token,
        max_requests=requests,
        max_seconds=seconds,
        rate=rate,
        verify_after=verify_after,
    )
    cpu = Cpu(stack.pids())
    load = asyncio.create_task(run_load(plan, shape.processes))
    started = time.monotonic()
    while not load.done():
        elapsed = time.monotonic() - started
        progress.update(elapsed / (seconds + verify_after), f"{await sandbox.vendor_calls()} delivered")
        await asyncio.sleep(SAMPLE_INTERVAL)
    result = await load
    used = cpu.used(result.cpu_seconds)
    reports = await fetch_reports(stack, _spread(result.otp_ids, LATENCY_REPORTS))
    summary: dict[str, Any] = {
        "kind": "scenario",
        "parameters": {
            "rate": round(rate, 1),
            "max_requests": requests,
            "max_seconds": seconds,
            "verify_after_seconds": verify_after,
            "load_processes": shape.processes,
            "verify": "right code (read from the sandbox inbox) for even sends, a wrong code for odd ones",
        },
        "throughput": round(result.sent / max(result.wall_seconds - verify_after, 1e-9), 1),
        "accepted": result.sent,
        "refused": result.refused,
        "send_ms": percentiles(result.send_ms),
        "verify_right_ms": percentiles(result.verify_ms["right"]),
        "verify_wrong_ms": percentiles(result.verify_ms["wrong"]),
        "verify_status": result.verify_status,
        "enqueue_to_vendor_ms": percentiles(_enqueue_to_vendor(reports)),
        "reports_checked": len(reports),
        "load_generator_max_lag_ms": round(result.max_lag_ms, 1),
        "load_generator_cpu_cores": round(result.cpu_seconds / max(result.wall_seconds, 1e-9), 2),
        "cpu": used,
    }
    send_p99 = summary["send_ms"]["p99"]
    progress.end(f"{result.sent} sends at {rate:.0f}/s, send p99 {send_p99} ms")
    return summary


async def memory(
    stack: BenchStack, sandbox: Sandbox, sends: int, latency_ms: float, seconds: float, progress: Progress
) -> dict[str, Any]:
    """Peak worker RSS while ``sends`` sends are queued or in flight on a vendor answering in ``latency_ms``."""
    progress.begin("worker_rss")
    await _fresh(stack, sandbox, latency_ms)
    pids = stack.worker_pids()
    idle = {pid: procs.rss_bytes(pid) for pid in pids}
    plan = LoadPlan(stack.api_url, stack.sandbox_url, stack.token, max_requests=sends, max_seconds=seconds)
    load = asyncio.create_task(run_load(plan, 1))
    peak_rss = dict(idle)
    calls: list[tuple[float, int]] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for pid in pids:
            peak_rss[pid] = max(peak_rss[pid], procs.rss_bytes(pid))
        calls.append((time.monotonic() - started, await sandbox.vendor_calls()))
        progress.update((time.monotonic() - started) / seconds, f"{calls[-1][1]} vendor calls begun")
        await asyncio.sleep(SAMPLE_INTERVAL)
    result = await load
    await sandbox.reset()  # later calls answer at once; those waiting finish their latency
    in_flight = _most_in_flight(calls, latency_ms / 1000)
    summary: dict[str, Any] = {
        "kind": "scenario",
        "parameters": {"sends": sends, "vendor_latency_ms": latency_ms, "sample_seconds": seconds},
        "accepted": result.sent,
        "vendor_calls_in_flight_max": in_flight,
        "queued_or_in_flight": result.sent,
        "idle_rss_mb": _megabytes(sum(idle.values())),
        "peak_rss_mb_per_worker": [_megabytes(value) for value in peak_rss.values()],
        "peak_rss_mb_total": _megabytes(sum(peak_rss.values())),
    }
    progress.end(f"peak worker RSS {max(summary['peak_rss_mb_per_worker'])} MB, {in_flight} vendor calls in flight")
    return summary


async def _fresh(stack: BenchStack, sandbox: Sandbox, latency_ms: float) -> None:
    """Start from an idle stack and a sandbox with no calls counted, at the given vendor latency."""
    if not await asyncio.to_thread(stack.settle, SETTLE_SECONDS):
        print(f"\nthe stack was still busy after {SETTLE_SECONDS:.0f} s: its queue was dropped", file=sys.stderr)
    await sandbox.reset()
    if latency_ms:
        await sandbox.latency(latency_ms)


def _steady_rate(timeline: list[tuple[float, int]]) -> tuple[float, float]:
    """Deliveries per second after the warm-up (from the first delivery), and the window's length."""
    first = next((t for t, count in timeline if count), timeline[-1][0])
    end, last = timeline[-1]
    warm = first + (end - first) * WARM_UP_SHARE
    start, counted = next(((t, count) for t, count in timeline if t >= warm), timeline[-1])
    window = end - start
    return (round((last - counted) / window, 1) if window > 0 else 0.0), window


def _most_in_flight(calls: list[tuple[float, int]], latency: float) -> int:
    """The most vendor calls begun within one latency of each other: the calls in flight at once."""
    most = 0
    for index, (at, count) in enumerate(calls):
        earlier = [c for t, c in calls[: index + 1] if t >= at - latency]
        most = max(most, count - min(earlier) if earlier else 0)
    return most


async def fetch_reports(stack: BenchStack, otp_ids: list[str]) -> list[dict[str, Any]]:
    """The reports of ``otp_ids``, once no send is queued or being delivered."""
    await asyncio.to_thread(stack.settle, SETTLE_SECONDS)
    headers = {"Authorization": f"Bearer {stack.token}"}
    limit = asyncio.Semaphore(REPORT_CONCURRENCY)
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(otp_id: str) -> dict[str, Any]:
            async with limit, session.get(f"{stack.api_url}/verify/v1/report/{otp_id}") as response:
                report: dict[str, Any] = await response.json()
                return report

        return list(await asyncio.gather(*(one(otp_id) for otp_id in otp_ids)))


def _spread(items: list[str], most: int) -> list[str]:
    """At most ``most`` of ``items``, evenly spread."""
    return items[:: max(1, -(-len(items) // most))]


def _enqueue_to_vendor(reports: list[dict[str, Any]]) -> list[float]:
    """Milliseconds from each OTP's creation to the start of its first vendor call."""
    waits = []
    for report in reports:
        if report.get("attempts"):
            created = datetime.fromisoformat(report["created_at"])
            started = datetime.fromisoformat(report["attempts"][0]["started_at"])
            waits.append((started - created).total_seconds() * 1000)
    return waits


def _megabytes(value: int) -> float:
    return round(value / 2**20, 1)
