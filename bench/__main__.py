"""``python -m bench`` (also ``otp-dispatcher bench`` and ``make bench``): every scenario and baseline of
issue #7 in one run, on a stack of its own; writes ``<out>/<date>.json`` and ``<out>/<date>.png`` (and the routing
scenario's curves, ``<out>/<date>-routing.png``) and prints the README table with the targets checked."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench import conversion, procs, profile, report, routing, scenarios
from bench.baselines import NAIVE_PREFORK, NOOP_DRAIN, PLAIN_CELERY_PER_OTP, run_baseline
from bench.progress import Progress
from bench.scenarios import LoadShape
from bench.stack import BenchStack, Sandbox, Topology

ROOT = Path(__file__).resolve().parent.parent
ONE_MESSAGE_PER_OTP = {"OTP_JOB_BATCH": "1", "OTP_JOB_LINGER": "0"}
"""The API's settings for the same pipeline without batching: each send published at once, alone."""
STEPS = 13
ONLY = ("conversion", "routing")
"""What ``--only`` can run alone (the rest of the bench skipped, no targets checked, no plot)."""
QUICK = {
    "peak_seconds": 2.0,
    "peak_requests": 400,
    "latency_seconds": 2.0,
    "latency_rate": 20.0,
    "verify_after": 0.3,
    "rss_sends": 40,
    "rss_latency_ms": 1000.0,
    "rss_seconds": 1.5,
    "baseline_messages": 200,
    "naive_messages": 6,
    "baseline_seconds": 5.0,
    "workers": 1,
    "concurrency": 16,
    "load_concurrency": 16,
    "profile_seconds": 0.0,
    "conversion_otps": 20,
    "conversion_rate": 10.0,
    "phone_delay_ms": [200.0, 500.0],
    "deadline": 3.0,
    "routing_otps": 30,
    "routing_rate": 30.0,
    "routing_recover_at": 15,
    "routing_warm_up": 5,
    "routing_window": 30.0,
    "routing_conversion_wait": 2.0,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otp-dispatcher bench", description=__doc__)
    add = parser.add_argument
    add("--quick", action="store_true", help="tiny numbers everywhere: checks that the harness runs (seconds)")
    add("--out", type=Path, default=ROOT / "bench" / "results", help="where the JSON and PNG go")
    add("--peak-seconds", type=float, default=60.0, help="each peak-throughput scenario lasts at most this")
    add("--peak-requests", type=int, default=200_000, help="...and sends at most this many")
    add("--latency-seconds", type=float, default=30.0, help="the latency scenario's open-loop load lasts this")
    add("--latency-rate", type=float, default=0.0, help="sends per second for latency (default: half the peak)")
    add("--verify-after", type=float, default=1.0, help="seconds between a send and its verify")
    add("--rss-sends", type=int, default=1000, help="sends in flight while worker memory is sampled")
    add("--rss-latency-ms", type=float, default=5000.0, help="vendor latency while worker memory is sampled")
    add("--rss-seconds", type=float, default=12.0, help="how long worker memory is sampled")
    add("--baseline-messages", type=int, default=20_000, help="messages for the no-op and one-per-OTP baselines")
    add("--naive-messages", type=int, default=300, help="messages for the naive prefork baseline")
    add("--baseline-seconds", type=float, default=45.0, help="each baseline lasts at most this")
    add("--workers", type=int, default=2, help="otp-dispatcher worker processes")
    add("--concurrency", type=int, default=100, help="threads per worker process")
    add("--load-processes", type=int, default=1, help="load generator processes")
    add("--load-concurrency", type=int, default=128, help="closed-loop requests in flight")
    add("--max-backlog", type=int, default=1000, help="closed loop: most accepted sends awaiting delivery")
    add("--profile-seconds", type=float, default=10.0, help="py-spy the API and a worker this long at peak (0: off)")
    add("--only", choices=ONLY, help="run this scenario alone")
    add("--conversion-otps", type=int, default=150, help="conversion: OTPs sent in each of its two runs")
    add("--conversion-rate", type=float, default=5.0, help="conversion: sends per second")
    add("--phone-delay-ms", type=float, nargs=2, default=[5000.0, 15000.0], help="conversion: the phone's typing delay")
    add("--deadline", type=float, default=10.0, help="conversion: the workflow's first step's deadline (seconds)")
    plan = routing.RoutingPlan()
    add("--routing-otps", type=int, default=plan.otps, help="routing: OTPs per country in each of its two runs")
    add("--routing-rate", type=float, default=plan.rate, help="routing: sends per second, both countries")
    add("--routing-recover-at", type=int, default=plan.recover_at, help="routing: the +33 OTP from which A recovers")
    add("--routing-warm-up", type=int, default=plan.warm_up, help="routing: OTPs per country before the figures")
    add("--routing-window", type=float, default=plan.window, help="routing: the adaptive window (seconds)")
    add("--routing-conversion-wait", type=float, default=plan.conversion_wait, help="routing: conversion wait (s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        parser_defaults = build_parser().parse_args([])
        for name, value in QUICK.items():
            if getattr(args, name) == getattr(parser_defaults, name):
                setattr(args, name, value)
    with tempfile.TemporaryDirectory(prefix="otp-bench-") as workdir:
        results = asyncio.run(run(args, Path(workdir)))
    stem = results["date"] + (f"-{args.only}" if args.only else "")
    report.write_json(results, args.out / f"{stem}.json")
    if not args.only:
        report.plot(results, args.out / f"{stem}.png")
        print(report.markdown(results) + "\n")
    if "conversion" in results:
        print(conversion.markdown(results["conversion"]))
    if "routing" in results:
        routing.plot(results["routing"], args.out / f"{results['date']}-routing.png")
        print("\n" + routing.markdown(results["routing"]))
    print(f"\nwrote {args.out / stem}.json and the plots", file=sys.stderr)
    return 0


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    topology = Topology(worker_processes=args.workers, worker_concurrency=args.concurrency)
    shape = LoadShape(args.load_processes, args.load_concurrency, args.max_backlog)
    progress = Progress({"conversion": len(conversion.RUNS), "routing": len(routing.RUNS)}.get(args.only, STEPS))
    started = time.time()
    results: dict[str, Any] = {
        "date": datetime.now(tz=UTC).strftime("%Y-%m-%d"),
        "started_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "machine": procs.machine_facts(),
        "options": {name: str(value) if isinstance(value, Path) else value for name, value in vars(args).items()},
        "baselines": {},
        "scenarios": {},
    }
    print("starting the stack (Redis, sandbox, API, workers)...", file=sys.stderr)
    with BenchStack(workdir, topology) as stack:
        results["topology"] = {
            **stack.describe(),
            "load_generator_processes": shape.processes,
            "everything_on": "this machine, 127.0.0.1",
        }
        async with aiohttp.ClientSession() as session:
            sandbox = Sandbox(stack.sandbox_url, session)
            plan = conversion.ConversionPlan(
                args.conversion_otps, args.conversion_rate, tuple(args.phone_delay_ms), args.deadline
            )
            routing_plan = routing.RoutingPlan(
                args.routing_otps,
                args.routing_rate,
                tuple(args.phone_delay_ms),
                recover_at=args.routing_recover_at,
                warm_up=args.routing_warm_up,
                window=args.routing_window,
                conversion_wait=args.routing_conversion_wait,
            )
            if args.only:
                if args.only == "conversion":
                    results["conversion"] = await conversion.run(stack, sandbox, plan, progress)
                else:
                    results["routing"] = await routing.run(stack, sandbox, routing_plan, progress)
                results["duration_seconds"] = round(time.time() - started, 1)
                return results
            baselines = results["baselines"]
            baselines["noop_drain"] = await run_baseline(
                NOOP_DRAIN, stack, sandbox, args.baseline_messages, args.baseline_seconds, progress
            )
            baselines["plain_celery_per_otp"] = await run_baseline(
                PLAIN_CELERY_PER_OTP, stack, sandbox, args.baseline_messages, args.baseline_seconds, progress
            )
            baselines["naive_prefork"] = await run_baseline(
                NAIVE_PREFORK, stack, sandbox, args.naive_messages, args.baseline_seconds, progress
            )
            found = results["scenarios"]
            peak = scenarios.peak(
                "peak_0ms", stack, sandbox, shape, 0.0, args.peak_requests, args.peak_seconds, progress
            )
            if args.profile_seconds:
                found["peak_0ms"], results["profile"] = await asyncio.gather(
                    peak, profile.sample(stack, args.profile_seconds, delay=args.peak_seconds / 4)
                )
            else:
                found["peak_0ms"] = await peak
            stack.restart_api(ONE_MESSAGE_PER_OTP)
            found["peak_0ms_one_message_per_otp"] = await scenarios.peak(
                "peak_0ms_one_message_per_otp",
                stack,
                sandbox,
                shape,
                0.0,
                args.peak_requests,
                args.peak_seconds,
                progress,
            )
            stack.restart_api({})
            found["peak_200ms"] = await scenarios.peak(
                "peak_200ms", stack, sandbox, shape, 200.0, args.peak_requests, args.peak_seconds, progress
            )
            rate = args.latency_rate or found["peak_0ms"]["throughput"] / 2
            for name, share in (("latency_half_peak", 1.0), ("latency_fifth_peak", 0.4)):
                found[name] = await scenarios.latency(
                    name, stack, sandbox, shape, rate * share, args.latency_seconds, args.verify_after, progress
                )
            found["worker_rss"] = await scenarios.memory(
                stack, sandbox, args.rss_sends, args.rss_latency_ms, args.rss_seconds, progress
            )
            results["conversion"] = await conversion.run(stack, sandbox, plan, progress)
            results["routing"] = await routing.run(stack, sandbox, routing_plan, progress)
    results["machine"]["load_average_at_end"] = procs.machine_facts()["load_average"]
    results["duration_seconds"] = round(time.time() - started, 1)
    results["targets"] = report.check_targets(results)
    results["yardstick_ratios"] = report.yardstick_ratios(results)
    results["cost_per_otp"] = report.cost_per_otp(results)
    return results


def _git_commit() -> str:
    try:
        answer = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return answer.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
