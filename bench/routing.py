"""The routing scenario: the static chain against the adaptive policy, in two countries with opposite vendors.

Vendor A (the sandbox's D7) silently drops ``drop_rate`` of the +33 messages, vendor B (its Octopush) of the +44
ones; each delivers all of the other country's. The sandbox phone types every code it receives after a human's
delay into the bench's receiver (``bench.conversion.Phone``), which verifies it. Sends alternate between the
countries at a fixed rate; once ``recover_at`` +33 OTPs are sent, A stops dropping (it recovered). Two runs on the
bench's own stack, API and workers restarted for each with the chain [A, B] and its receipts on:

- ``static_chain``: the chain (``ordered``): A takes every first attempt;
- ``adaptive``: every route ``adaptive`` (``window``, ``conversion_wait``: ``RoutingPlan``).

Measured per run and country, over the OTPs in the order sent: which vendor took the first attempt, and whether
that attempt converted (the report's ``converted_by`` is it). The issue's figures: after a warm-up of at most
``warm_up`` OTPs per country, >= 90% of +33 first attempts to B (until A recovers) and of +44 to A, first-attempt
conversion >= 97%, and A's share of +33 back (>= ``SHARE_BACK`` of the last ``TRAIL`` OTPs) within ``RECOVERY_BOUND``
OTPs of its recovery (the static chain never took it away: back at once). The curves (share and conversion over
the OTPs sent) go to a PNG, both runs side by side.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.conversion import TYPING_GRACE, Phone, delete, put
from bench.progress import Progress
from bench.scenarios import fetch_reports
from bench.stack import BenchStack, Sandbox
from devtools.devstack import sandbox_providers
from vendors import phone as phones
from vendors.phone import InvalidNumber
from vendors.receipts import callback_url

VENDOR_A = "d7"
VENDOR_B = "octopush"
DROPS = {"+33": VENDOR_A, "+44": VENDOR_B}
"""Which vendor drops the messages of each country."""
GOOD = {"+33": VENDOR_B, "+44": VENDOR_A}
RUNS = ("static_chain", "adaptive")
SETTLE_SECONDS = 60.0
TRAIL = 100
"""OTPs of a country the curves (and the share back) are measured over."""
SHARE_BACK = 0.4
"""A's share of +33 first attempts that counts as won back (A and B now both deliver all: about half each)."""
RECOVERY_BOUND = 500
GOOD_SHARE_TARGET = 0.9
CONVERSION_TARGET = 0.97


@dataclass(frozen=True)
class RoutingPlan:
    otps: int = 1500
    """OTPs per country in each run."""
    rate: float = 10.0
    """Sends per second, both countries together."""
    phone_delay_ms: tuple[float, float] = (5000.0, 15000.0)
    drop_rate: float = 0.3
    recover_at: int = 700
    """The +33 OTP from which A delivers all."""
    warm_up: int = 200
    window: float = 60.0
    """The adaptive policy's window (seconds): about 300 OTPs of a country at the default rate."""
    conversion_wait: float = 20.0
    """Past the phone's longest delay."""


def stack_settings(plan: RoutingPlan, stack: BenchStack, adaptive: bool) -> dict[str, str]:
    """The API's and workers' settings for one run: the chain [A, B], receipts to the API, the policy."""
    by_name = {str(provider["name"]): provider for provider in sandbox_providers(stack.sandbox_url)}
    settings = {
        "OTP_PROVIDERS": json.dumps([by_name[VENDOR_A], by_name[VENDOR_B]]),
        "OTP_CALLBACK_URL": stack.api_url,
    }
    if adaptive:
        settings["OTP_ROUTE_POLICIES"] = json.dumps({"default": {"policy": "adaptive"}})
        settings["OTP_ROUTING"] = json.dumps({"window": plan.window, "conversion_wait": plan.conversion_wait})
    return settings


async def run(stack: BenchStack, sandbox: Sandbox, plan: RoutingPlan, progress: Progress) -> dict[str, Any]:
    """Both runs, side by side; the stack is given its own settings back at the end."""
    parameters = asdict(plan) | {"vendor_a": VENDOR_A, "vendor_b": VENDOR_B}
    found: dict[str, Any] = {"kind": "routing", "parameters": parameters}
    try:
        for name in RUNS:
            progress.begin(f"routing_{name}")
            await asyncio.to_thread(stack.restart, stack_settings(plan, stack, name == "adaptive"))
            found[name] = _summary(plan, await _one_run(stack, sandbox, plan, progress))
            row = found[name]
            progress.end(
                f"first-attempt conversion {row['first_attempt_conversion']:.1%} after the warm-up, good vendor "
                f"{row['good_share']['+33']:.0%} (+33) / {row['good_share']['+44']:.0%} (+44)"
            )
    finally:
        await asyncio.to_thread(stack.restart, {})
    found["targets"] = targets(found["adaptive"])
    return found


async def _one_run(stack: BenchStack, sandbox: Sandbox, plan: RoutingPlan, progress: Progress) -> dict[str, list[Any]]:
    """Each country's OTPs in the order sent: (first attempt's vendor, whether it converted), None if not sent."""
    if not await asyncio.to_thread(stack.settle, SETTLE_SECONDS):
        print(f"\nthe stack was still busy after {SETTLE_SECONDS:.0f} s: its queue was dropped", file=sys.stderr)
    await sandbox.reset()
    session = sandbox.session
    secret = stack.env["OTP_SECRET_KEY"]
    receipts = {"url": callback_url(stack.api_url, secret, VENDOR_B)}
    await put(session, f"{stack.sandbox_url}/_sandbox/callbacks/{VENDOR_B}", receipts)
    for country, vendor in DROPS.items():
        drops = {"silent_drop_rate": plan.drop_rate, "prefix": country}
        await put(session, f"{stack.sandbox_url}/_sandbox/faults/{vendor}", drops)
    receiver = Phone(stack.api_url, stack.token, session)
    numbers = {country: _numbers(country, plan.otps) for country in DROPS}
    order = [(country, index) for index in range(plan.otps) for country in DROPS]
    headers = {"Authorization": f"Bearer {stack.token}"}
    async with receiver.running():
        typing = {"url": receiver.url, "token": receiver.token, "delay_ms": list(plan.phone_delay_ms)}
        await put(session, f"{stack.sandbox_url}/_sandbox/phone", typing)

        async def send(recipient: str) -> None:
            body = {"recipient": recipient, "content": "Your code is {}"}
            async with session.post(stack.api_url + "/verify/v1/otp/send-otp", json=body, headers=headers) as answer:
                sent = await answer.json()
            if answer.status == 200:
                receiver.expect(recipient).set_result(str(sent["otp_id"]))
            else:
                receiver.expect(recipient).cancel()

        started, sends = time.monotonic(), []
        for step, (country, index) in enumerate(order):
            if country == "+33" and index == plan.recover_at:
                await put(session, f"{stack.sandbox_url}/_sandbox/faults/{VENDOR_A}", {})  # A recovers
            recipient = numbers[country][index]
            receiver.expect(recipient)
            await asyncio.sleep(max(0.0, started + step / plan.rate - time.monotonic()))  # fixed-rate pacing
            sends.append(asyncio.create_task(send(recipient)))
            progress.update(0.8 * (step + 1) / len(order), f"{step + 1} sent, {len(receiver.approved_at)} converted")
        await asyncio.gather(*sends)
        await asyncio.sleep(plan.phone_delay_ms[1] / 1000 + TYPING_GRACE)  # the last codes are typed
        await delete(session, f"{stack.sandbox_url}/_sandbox/phone")
    otp_ids = {r: f.result() for r, f in receiver.otp_ids.items() if f.done() and not f.cancelled()}
    reports = dict(zip(otp_ids, await fetch_reports(stack, list(otp_ids.values())), strict=True))
    progress.update(1.0, f"{len(receiver.approved_at)} converted")
    return {country: [_first_attempt(reports.get(recipient)) for recipient in numbers[country]] for country in DROPS}


def _first_attempt(report: dict[str, Any] | None) -> tuple[str, bool] | None:
    """The vendor of the OTP's first attempt and whether that attempt converted."""
    if not report or not report.get("attempts"):
        return None
    first = report["attempts"][0]
    return str(first["vendor"]), report.get("converted_by") == first


def _summary(plan: RoutingPlan, firsts: dict[str, list[Any]]) -> dict[str, Any]:
    """The figures of one run, and its curves (each OTP's trailing share of the good vendor and conversion)."""
    good_share, curves = {}, {}
    measured: list[bool] = []
    for country, rows in firsts.items():
        sent = [row for row in rows if row is not None]
        until = plan.recover_at if country == "+33" else len(sent)
        after = sent[plan.warm_up : until]
        good_share[country] = _share([vendor == GOOD[country] for vendor, _ in after])
        measured += [converted for _, converted in sent[plan.warm_up :]]
        curves[country] = {
            "vendor_a_share": _trailing([vendor == VENDOR_A for vendor, _ in sent]),
            "first_attempt_conversion": _trailing([converted for _, converted in sent]),
        }
    a_share = curves["+33"]["vendor_a_share"]
    back = next((i for i in range(plan.recover_at, len(a_share)) if a_share[i] >= SHARE_BACK), None)
    return {
        "sent": {country: sum(row is not None for row in rows) for country, rows in firsts.items()},
        "good_share": good_share,
        "first_attempt_conversion": _share(measured),
        "vendor_a_share_back_after": None if back is None else back + 1 - plan.recover_at,
        "curves": curves,
    }


def targets(adaptive: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's figures for the adaptive run, each with what was measured and whether it is met."""
    shares, conversion = adaptive["good_share"], adaptive["first_attempt_conversion"]
    back = adaptive["vendor_a_share_back_after"]
    after, good = "after the warm-up", f">= {GOOD_SHARE_TARGET:.0%}"
    return [
        *(_target(f"{good} of {c} first attempts to {GOOD[c]} {after}", shares[c], GOOD_SHARE_TARGET) for c in DROPS),
        _target(f"first-attempt conversion >= {CONVERSION_TARGET:.0%} {after}", conversion, CONVERSION_TARGET),
        {
            "target": f"{VENDOR_A} back to >= {SHARE_BACK:.0%} of +33 within {RECOVERY_BOUND} OTPs of recovering",
            "measured": back,
            "met": back is not None and back <= RECOVERY_BOUND,
        },
    ]


def markdown(routing: dict[str, Any]) -> str:
    """Both runs side by side, and the targets, for the README."""
    p = routing["parameters"]
    lines = [
        f"Routing: {p['otps']} OTPs per country at {p['rate']:g}/s, {VENDOR_A} drops {p['drop_rate']:.0%} of +33 "
        f"(until OTP {p['recover_at']}), {VENDOR_B} {p['drop_rate']:.0%} of +44; warm-up {p['warm_up']} per country",
        "",
        f"| run | +33 first attempts to {VENDOR_B} | +44 first attempts to {VENDOR_A} | first-attempt conversion | "
        f"{VENDOR_A} back on +33 after |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in RUNS:
        row = routing[name]
        back = row["vendor_a_share_back_after"]
        lines.append(
            f"| {name} | {row['good_share']['+33']:.1%} | {row['good_share']['+44']:.1%} | "
            f"{row['first_attempt_conversion']:.1%} | {'-' if back is None else f'{back} OTPs'} |"
        )
    lines += ["", "| target | measured | met |", "|---|---:|---|"]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |" for t in routing["targets"]]
    return "\n".join(lines)


def plot(routing: dict[str, Any], path: Path) -> None:
    """For each run (columns): the share of first attempts to A (top) and the first-attempt conversion (bottom) over
    the OTPs sent to each country, trailing ``TRAIL`` OTPs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    recover_at = routing["parameters"]["recover_at"]
    figure, axes = pyplot.subplots(2, len(RUNS), figsize=(14, 8), sharex=True, sharey=True)
    for column, name in enumerate(RUNS):
        for row, (series, label) in enumerate(
            (
                ("vendor_a_share", f"share of first attempts to {VENDOR_A}"),
                ("first_attempt_conversion", "first-attempt conversion"),
            )
        ):
            axis = axes[row][column]
            for country, curves in routing[name]["curves"].items():
                axis.plot(range(1, len(curves[series]) + 1), curves[series], label=country)
            axis.axvline(recover_at, color="grey", linestyle=":", label=f"{VENDOR_A} recovers on +33")
            axis.set_ylim(0, 1.05)
            axis.set_title(f"{name}: {label} (trailing {TRAIL})")
            axis.legend(loc="lower right")
        axes[1][column].set_xlabel("OTPs sent to the country")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _target(target: str, measured: float, at_least: float) -> dict[str, Any]:
    return {"target": target, "measured": round(measured, 3), "met": measured >= at_least}


def _trailing(flags: list[bool]) -> list[float]:
    """At each OTP, the share of the last ``TRAIL`` (fewer at the start) that are true."""
    shares, total = [], 0
    for index, flag in enumerate(flags):
        total += flag - (flags[index - TRAIL] if index >= TRAIL else 0)
        shares.append(round(total / min(index + 1, TRAIL), 3))
    return shares


def _share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def _numbers(country: str, count: int) -> list[str]:
    """``count`` distinct valid mobile numbers of the country, fresh for each run."""
    pattern = {"+33": ("+336", "1245678", 7), "+44": ("+447", "4589", 8)}[country]
    found: set[str] = set()
    while len(found) < count:
        number = f"{pattern[0]}{random.choice(pattern[1])}{random.randrange(10 ** pattern[2]):0{pattern[2]}d}"
        try:
            phones.parse(number)
        except InvalidNumber:
            continue
        found.add(number)
    return list(found)
