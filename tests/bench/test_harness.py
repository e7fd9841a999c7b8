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

pytestmark = pytest.mark.slow

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
        timeout=110,
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
    assert conversion["workflow"]["second_steps"] > 0
    assert conversion["workflow"]["send_to_receipt_ms"]["p95"] is not None


def test_the_plot_is_written_as_a_png(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = run
    [plot] = out.glob("*.png")

    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
