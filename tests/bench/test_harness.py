"""The benchmark harness runs end to end on a tiny load (``--quick``): benchmarks are not tests, so only
that it starts its stack, runs every scenario and baseline, and writes what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
"""The quick bench runs its scenarios one after the other, routing's two runs included: well over a minute."""

BASELINES = {"noop_drain", "plain_celery_per_otp", "naive_prefork"}
RATED_SCENARIOS = {
    "peak_0ms",
    "peak_0ms_one_message_per_otp",
    "peak_200ms",
    "latency_half_peak",
    "latency_fifth_peak",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``otp-dispatcher bench -- --quick`` once, writing into a temporary directory."""
    out = tmp_path_factory.mktemp("bench-results")
    clean = {key: value for key, value in os.environ.items() if not key.startswith("OTP_")}
    result = subprocess.run(
        [sys.executable, "-m", "cli", "bench", "--", "--quick", "--out", str(out)],
        env=clean,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result, out


@pytest.fixture(scope="module")
def results(run: tuple[subprocess.CompletedProcess[str], Path]) -> dict[str, Any]:
    _, out = run
    [path] = out.glob("*.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_every_baseline_and_rated_scenario_measures_a_positive_throughput(results: dict[str, Any]) -> None:
    runs = {**results["baselines"], **results["scenarios"]}

    assert set(runs) == BASELINES | RATED_SCENARIOS | {"worker_rss"}
    assert all(runs[name]["throughput"] > 0 for name in BASELINES | RATED_SCENARIOS), runs


def test_latency_percentiles_are_measured_for_send_verify_and_enqueue(results: dict[str, Any]) -> None:
    latency = results["scenarios"]["latency_half_peak"]

    for series in ("send_ms", "verify_right_ms", "verify_wrong_ms", "enqueue_to_vendor_ms"):
        assert latency[series]["count"] > 0, series
        assert 0 < latency[series]["p50"] <= latency[series]["p99"], series
    assert latency["verify_status"].get("APPROVED", 0) > 0


def test_worker_memory_is_sampled_while_sends_wait_on_the_vendor(results: dict[str, Any]) -> None:
    memory = results["scenarios"]["worker_rss"]

    assert memory["vendor_calls_in_flight_max"] > 0
    assert all(megabytes > 0 for megabytes in memory["peak_rss_mb_per_worker"])


def test_the_results_record_topology_commit_machine_and_cpu(results: dict[str, Any]) -> None:
    assert results["topology"]["worker_processes"] >= 1
    assert results["git_commit"]
    assert results["machine"]["cpus"] >= 1
    assert results["scenarios"]["peak_0ms"]["cpu"]["cores"]["worker0"] > 0


def test_every_target_of_the_issue_is_checked_in_the_printed_table(
    run: tuple[subprocess.CompletedProcess[str], Path], results: dict[str, Any]
) -> None:
    printed, _ = run

    assert len(results["targets"]) == 8
    for target in results["targets"]:
        assert f"| {target['target']} |" in printed.stdout


def test_the_conversion_runs_with_and_without_the_workflow_are_printed_side_by_side(
    run: tuple[subprocess.CompletedProcess[str], Path], results: dict[str, Any]
) -> None:
    printed, _ = run
    conversion = results["conversion"]

    for name in ("plain_chain", "workflow"):
        assert conversion[name]["sent"] == conversion["parameters"]["otps"], name
        assert conversion[name]["converted"] > 0, name
        assert f"| {name} | {conversion[name]['converted']}/{conversion[name]['sent']} " in printed.stdout
    assert conversion["workflow"]["converted"] >= conversion["plain_chain"]["converted"]
    assert conversion["workflow"]["second_steps"] >= 0  # none when the drop fault spared all of the quick run's OTPs
    assert conversion["workflow"]["send_to_receipt_ms"]["p95"] is not None


def test_the_plots_are_written_as_pngs(
    run: tuple[subprocess.CompletedProcess[str], Path], results: dict[str, Any]
) -> None:
    _, out = run
    plots = sorted(out.glob("*.png"))

    assert [plot.name for plot in plots] == [f"{results['date']}-routing.png", f"{results['date']}.png"]
    assert all(plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for plot in plots)


def test_the_routing_runs_are_printed_side_by_side_with_the_issues_targets(
    run: tuple[subprocess.CompletedProcess[str], Path], results: dict[str, Any]
) -> None:
    printed, _ = run
    routing = results["routing"]

    for name in ("static_chain", "adaptive"):
        otps = routing["parameters"]["otps"]
        assert routing[name]["sent"] == {"+33": otps, "+44": otps}, name
        assert len(routing[name]["curves"]["+33"]["vendor_a_share"]) == otps
        assert f"| {name} | " in printed.stdout
    assert routing["static_chain"]["good_share"]["+44"] == 1.0  # the chain: d7 first, always
    assert len(routing["targets"]) == 4
    for target in routing["targets"]:
        assert f"| {target['target']} |" in printed.stdout


def test_each_throughput_is_printed_and_kept_as_ratios_to_the_yardsticks_of_the_same_run(
    run: tuple[subprocess.CompletedProcess[str], Path], results: dict[str, Any]
) -> None:
    printed, _ = run
    ratios = results["yardstick_ratios"]
    noop, plain = (results["baselines"][name]["throughput"] for name in ("noop_drain", "plain_celery_per_otp"))

    assert set(ratios) == BASELINES | RATED_SCENARIOS
    assert ratios["noop_drain"]["noop_drain"] == 1.0
    peak = results["scenarios"]["peak_0ms"]["throughput"]
    assert ratios["peak_0ms"] == {"noop_drain": round(peak / noop, 2), "plain_celery_per_otp": round(peak / plain, 2)}
    assert "| x noop_drain | x plain_celery_per_otp |" in printed.stdout
    assert (
        f"| peak_0ms | {peak} | {ratios['peak_0ms']['noop_drain']} | {ratios['peak_0ms']['plain_celery_per_otp']} |"
        in (printed.stdout)
    )


def test_what_each_process_costs_per_otp_at_the_peak_is_kept_and_printed(
    run: tuple[subprocess.CompletedProcess[str], Path], results: dict[str, Any]
) -> None:
    printed, _ = run
    cost = results["cost_per_otp"]

    assert cost["run"] == "peak_0ms"
    assert cost["sends"] == results["scenarios"]["peak_0ms"]["accepted"] > 0
    assert all(cost["cpu_ms"][part] > 0 for part in ("api_per_send", "workers_per_delivery", "redis_per_send"))
    assert cost["cpu_ms"]["api_per_send_and_verify"] > 0
    assert cost["redis_per_send"]["commands"] > 1
    assert cost["redis_per_send"]["bytes_in"] > 0
    assert cost["redis_per_send"]["bytes_out"] > 0
    assert f"| API, CPU ms per send | {cost['cpu_ms']['api_per_send']} |" in printed.stdout
    assert f"| Redis, commands per send | {cost['redis_per_send']['commands']} |" in printed.stdout
