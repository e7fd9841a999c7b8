"""What a run produced: percentiles, the targets of issue #7 checked, each throughput against the plain-Celery
yardsticks of the same run, what each process costs per OTP, the JSON file, the plot, the tables."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

Percentiles = dict[str, float | int | None]
SUSTAINED_SECONDS = 60.0
"""The issue's throughput target holds for this long."""
YARDSTICKS = ("noop_drain", "plain_celery_per_otp")
"""The baselines every throughput is also given as a ratio to: the same machine, the same run."""
COST_RUN = "peak_0ms"
"""The run each process's cost per OTP is measured on."""
VERIFY_RUN = "latency_half_peak"
"""The run with one verify per send, for the API's cost of a verify."""


def percentiles(values: list[float]) -> Percentiles:
    """Count, p50, p95, p99 and max of ``values`` (nearest rank), in the values' unit, 2 decimals."""
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(share: float) -> float:
        return round(ordered[max(0, math.ceil(share * len(ordered)) - 1)], 2)

    return {"count": len(ordered), "p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99), "max": rank(1.0)}


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue: the value measured in this run, and whether it is met."""
    scenarios, baselines = results["scenarios"], results["baselines"]
    peak_0 = scenarios["peak_0ms"]
    peak_200 = scenarios["peak_200ms"]["throughput"]
    latency = scenarios["latency_half_peak"]
    verify_p99 = _largest(latency["verify_right_ms"]["p99"], latency["verify_wrong_ms"]["p99"])
    sustained = peak_0["load_seconds"] >= SUSTAINED_SECONDS * 0.95  # not cut short by its request bound
    rows: list[tuple[str, float | None, float, bool]] = [
        ("end-to-end >= 1,000 OTP/s for 60 s", peak_0["throughput"], 1000.0, sustained),
        (
            "end-to-end >= 3x one-message-per-OTP",
            _ratio(peak_0["throughput"], scenarios["peak_0ms_one_message_per_otp"]),
            3.0,
            True,
        ),
        ("200 ms vendor >= 0.8x the 0 ms rate", _ratio(peak_200, peak_0), 0.8, True),
        ("200 ms vendor >= 50x naive prefork", _ratio(peak_200, baselines["naive_prefork"]), 50.0, True),
        ("send-otp p99 <= 20 ms at half peak", latency["send_ms"]["p99"], -20.0, True),
        ("verify-otp p99 <= 10 ms at half peak", verify_p99, -10.0, True),
        ("enqueue -> vendor call p99 <= 100 ms", latency["enqueue_to_vendor_ms"]["p99"], -100.0, True),
        (
            "worker RSS <= 200 MB, 1,000 sends in flight",
            max(scenarios["worker_rss"]["peak_rss_mb_per_worker"]),
            -200.0,
            True,
        ),
    ]
    checked = []
    for target, value, bound, also in rows:
        met = value is not None and (value >= bound if bound > 0 else value <= -bound) and also
        checked.append({"target": target, "value": value, "met": met})
    return checked


def _ratio(numerator: float, denominator: dict[str, Any] | float) -> float | None:
    value = denominator["throughput"] if isinstance(denominator, dict) else denominator
    return round(numerator / value, 2) if value else None


def _largest(*values: float | None) -> float | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def yardstick_ratios(results: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Each run's throughput as a ratio to each yardstick's, measured in the same run."""
    runs = {**results["baselines"], **results["scenarios"]}
    yardsticks = {name: results["baselines"].get(name, {}).get("throughput") for name in YARDSTICKS}
    return {
        name: {yardstick: _ratio(run["throughput"], value or 0.0) for yardstick, value in yardsticks.items()}
        for name, run in runs.items()
        if run.get("throughput")
    }


def cost_per_otp(results: dict[str, Any]) -> dict[str, Any]:
    """What each part of the stack costs per OTP at the peak (``COST_RUN``): CPU ms per accepted send (the API,
    Redis, the sandbox) and per delivery (the workers, per vendor call), Redis commands and bytes per send; and
    the API's CPU per send with one verify each (``VERIFY_RUN``), from which a verify's share is bounded."""
    peak = results["scenarios"][COST_RUN]
    seconds, sends, deliveries = peak["cpu"]["seconds"], peak["accepted"], peak["vendor_calls"]
    workers = sum(value for name, value in seconds.items() if name.startswith("worker"))
    cost: dict[str, Any] = {
        "run": COST_RUN,
        "sends": sends,
        "deliveries": deliveries,
        "cpu_ms": {
            "api_per_send": _per(seconds.get("api", 0.0) * 1000, sends, 3),
            "workers_per_delivery": _per(workers * 1000, deliveries, 3),
            "redis_per_send": _per(seconds.get("redis", 0.0) * 1000, sends, 3),
            "sandbox_per_send": _per(seconds.get("sandbox", 0.0) * 1000, sends, 3),
        },
    }
    traffic = peak.get("redis_traffic")
    if traffic:
        cost["redis_per_send"] = {name: _per(value, sends, 1) for name, value in traffic.items()}
    latency = results["scenarios"].get(VERIFY_RUN)
    if latency and latency["accepted"]:
        with_verify = _per(latency["cpu"]["seconds"].get("api", 0.0) * 1000, latency["accepted"], 3)
        send = cost["cpu_ms"]["api_per_send"]
        cost["cpu_ms"]["api_per_send_and_verify"] = with_verify
        # At this lower rate a send costs the API more than at the peak (README, "Latency"): an upper bound.
        cost["cpu_ms"]["api_per_verify_at_most"] = (
            round(with_verify - send, 3) if with_verify is not None and send is not None else None
        )
    return cost


def _per(total: float, count: int, digits: int) -> float | None:
    return round(total / count, digits) if count else None


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def markdown(results: dict[str, Any]) -> str:
    """The tables for the README: every scenario and baseline (throughput also as ratios to the yardsticks),
    every target, then what each process costs per OTP."""
    ratios = yardstick_ratios(results)
    lines = [
        "| run | throughput (/s) | x noop_drain | x plain_celery_per_otp | send-otp p50 / p95 / p99 (ms) "
        "| CPU: stack / load / other work (cores) | notes |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for name, scenario in {**results["baselines"], **results["scenarios"]}.items():
        send = scenario.get("send_ms")
        latencies = " / ".join(str(send[key]) for key in ("p50", "p95", "p99")) if send else ""
        used = scenario.get("cpu")
        cpu = f"{used['stack_cores']} / {used['load_cores']} / {used['others_cores']}" if used else ""
        throughput = scenario.get("throughput", "")
        against = " | ".join(_blank(ratios.get(name, {}).get(yardstick)) for yardstick in YARDSTICKS)
        lines.append(f"| {name} | {throughput} | {against} | {latencies} | {cpu} | {_note(name, scenario)} |")
    lines += ["", "| target | measured | met |", "|---|---:|---|"]
    lines += [f"| {row['target']} | {row['value']} | {'yes' if row['met'] else 'no'} |" for row in results["targets"]]
    lines += ["", *_cost_table(cost_per_otp(results))]
    return "\n".join(lines)


def _blank(value: float | None) -> str:
    return "" if value is None else str(value)


COST_ROWS = {
    "api_per_send": "API, CPU ms per send",
    "api_per_send_and_verify": f"API, CPU ms per send and its verify ({VERIFY_RUN})",
    "api_per_verify_at_most": "API, CPU ms per verify (at most: the two rows above subtracted)",
    "workers_per_delivery": "workers, CPU ms per delivery (vendor call)",
    "redis_per_send": "Redis, CPU ms per send",
    "sandbox_per_send": "sandbox vendor, CPU ms per send",
}


def _cost_table(cost: dict[str, Any]) -> list[str]:
    lines = [f"| cost per OTP ({cost['run']}, {cost['sends']} sends) | measured |", "|---|---:|"]
    lines += [
        f"| {label} | {_blank(cost['cpu_ms'][key])} |" for key, label in COST_ROWS.items() if key in cost["cpu_ms"]
    ]
    traffic = cost.get("redis_per_send", {})
    lines += [f"| Redis, {name.replace('_', ' ')} per send | {_blank(value)} |" for name, value in traffic.items()]
    return lines


def _note(name: str, scenario: dict[str, Any]) -> str:
    parameters = scenario["parameters"]
    if name.startswith("latency_"):
        right, wrong, wait = scenario["verify_right_ms"], scenario["verify_wrong_ms"], scenario["enqueue_to_vendor_ms"]
        return (
            f"at {parameters['rate']}/s; verify p99 {right['p99']} ms (right code), {wrong['p99']} ms (wrong); "
            f"enqueue -> vendor p50 {wait['p50']}, p99 {wait['p99']} ms"
        )
    if name == "worker_rss":
        return (
            f"{parameters['sends']} sends at {parameters['vendor_latency_ms']:.0f} ms: peak RSS per worker "
            f"{scenario['peak_rss_mb_per_worker']} MB, {scenario['vendor_calls_in_flight_max']} vendor calls at once"
        )
    latency = f"vendor {parameters['vendor_latency_ms']:.0f} ms" if "vendor_latency_ms" in parameters else ""
    if scenario["kind"] == "baseline":
        return f"{latency}, {parameters['worker_processes']} process(es) {' '.join(parameters['worker_options'])}"
    return f"{latency}, {scenario['measured_seconds']} s measured, {scenario['accepted']} accepted"


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughput per scenario and baseline (left); latency percentiles (right): send-otp at each peak
    (saturated), then every series at half the peak rate; worker memory in the footer."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    runs = {**results["baselines"], **results["scenarios"]}
    rated = {name: run["throughput"] for name, run in runs.items() if "throughput" in run}
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(16, 6))
    colours = ["#999999"] * len(results["baselines"]) + ["#1f77b4"] * (len(rated) - len(results["baselines"]))
    bars = left.bar(list(rated), list(rated.values()), color=colours)
    left.bar_label(bars, fmt="%.0f")
    left.set_yscale("log")
    left.set_ylabel("per second (log scale)")
    left.set_title("Throughput: baselines (grey), dispatcher (blue)")
    pyplot.setp(left.get_xticklabels(), rotation=30, ha="right")
    latency = results["scenarios"]["latency_half_peak"]
    series = {
        "send-otp\npeak 0 ms": results["scenarios"]["peak_0ms"]["send_ms"],
        "send-otp\npeak 200 ms": results["scenarios"]["peak_200ms"]["send_ms"],
        "send-otp\nhalf peak": latency["send_ms"],
        "verify, right\ncode, half peak": latency["verify_right_ms"],
        "verify, wrong\ncode, half peak": latency["verify_wrong_ms"],
        "enqueue -> vendor\ncall, half peak": latency["enqueue_to_vendor_ms"],
        "send-otp\nfifth peak": results["scenarios"]["latency_fifth_peak"]["send_ms"],
        "verify, right\ncode, fifth peak": results["scenarios"]["latency_fifth_peak"]["verify_right_ms"],
    }
    width = 0.25
    for offset, key in enumerate(("p50", "p95", "p99")):
        values = [float(stats[key] or 0) for stats in series.values()]
        positions = [index + (offset - 1) * width for index in range(len(series))]
        right.bar(positions, values, width, label=key)
    right.set_xticks(range(len(series)), list(series), fontsize=7)
    right.set_yscale("log")
    right.set_ylim(top=right.get_ylim()[1] * 5)
    right.set_ylabel("milliseconds (log scale)")
    fifth = results["scenarios"]["latency_fifth_peak"]["parameters"]["rate"]
    right.set_title(f"Latency: at each peak, at {latency['parameters']['rate']}/s (half the 0 ms peak) and {fifth}/s")
    right.legend(ncol=3, loc="upper center")
    memory = results["scenarios"]["worker_rss"]
    figure.suptitle(f"otp-dispatcher bench {results['date']} ({results['git_commit'][:10]})")
    figure.text(
        0.5,
        0.01,
        f"Worker memory: peak RSS {max(memory['peak_rss_mb_per_worker'])} MB per worker process with "
        f"{memory['parameters']['sends']} sends in flight at {memory['parameters']['vendor_latency_ms']:.0f} ms",
        ha="center",
    )
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
