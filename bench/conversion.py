"""The conversion scenario: how many OTPs a person actually types in, with and without a workflow.

Vendor A (the sandbox's D7) silently drops ``drop_rate`` of the messages to ``prefix`` numbers (accepted, never
delivered, no receipt); vendor B (the sandbox's Octopush) delivers all. The sandbox phone types each code it
receives after a human's delay into a small receiver in the bench process (``Phone``), which maps the number to
its ``otp_id`` and calls verify-otp: an OTP converted when that verify is APPROVED. The scenario runs twice on the
bench's own stack, API and workers restarted for each with the chain [A, B] and vendors' receipts on:

- ``plain_chain``: no workflow (the chain of today: B only when A answers an error, never on a silent drop);
- ``workflow``: [A sms, deadline D] -> [B sms]: no delivered receipt from A within D, B sends.

Measured per run: the share converted, send -> delivered receipt (the delivered attempt's ``receipt_at`` minus
the OTP's ``created_at``, from the reports) and send -> verify APPROVED (as the bench sees them), p50 / p95; for
the workflow run the issue's bound: p95 send -> delivered receipt <= D + B's p95 receipt latency + 1 s.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from bench.load import SEND_PATH, VERIFY_PATH
from bench.progress import Progress
from bench.report import percentiles
from bench.scenarios import fetch_reports
from bench.stack import BenchStack, Sandbox
from devtools.devstack import sandbox_providers
from devtools.processes import free_port
from vendors.receipts import callback_url

VENDOR_A = "d7"
VENDOR_B = "octopush"
RUNS = ("plain_chain", "workflow")
SETTLE_SECONDS = 60.0
TYPING_GRACE = 3.0
"""Seconds past the last code the phone could type (last send, deadline, delay) before the run stops waiting."""
PHONE_WAITS_FOR_SEND = 10.0
"""Seconds the receiver waits for send-otp's answer when the phone is quicker than it (its otp_id not known yet)."""
SAMPLE_INTERVAL = 0.2
BOUND_MARGIN_MS = 1000.0
"""The issue's allowance on top of the deadline and B's latency."""


@dataclass(frozen=True)
class ConversionPlan:
    otps: int = 150
    rate: float = 5.0
    """Sends per second (a fixed rate)."""
    phone_delay_ms: tuple[float, float] = (5000.0, 15000.0)
    deadline: float = 10.0
    """Step 0's deadline in the workflow run (seconds)."""
    drop_rate: float = 0.3
    prefix: str = "+33"


def stack_settings(plan: ConversionPlan, stack: BenchStack, workflow: bool) -> dict[str, str]:
    """The API's and workers' settings for one run: the chain [A, B], receipts to the API, the workflow if asked."""
    by_name = {str(provider["name"]): provider for provider in sandbox_providers(stack.sandbox_url)}
    chain = [by_name[VENDOR_A], by_name[VENDOR_B]]
    settings = {"OTP_PROVIDERS": json.dumps(chain), "OTP_CALLBACK_URL": stack.api_url}
    if workflow:
        steps = [{"vendor": VENDOR_A, "deadline": plan.deadline}, {"channel": "SMS", "vendor": VENDOR_B}]
        settings["OTP_WORKFLOWS"] = json.dumps({"default": {"steps": steps}})
    return settings


class Phone:
    """The receiver the sandbox phone types codes into: number -> otp_id, then verify-otp; records the answers."""

    def __init__(self, api_url: str, api_token: str, session: aiohttp.ClientSession) -> None:
        self.api_url = api_url
        self.headers = {"Authorization": f"Bearer {api_token}"}
        self.session = session
        self.token = secrets.token_urlsafe(16)
        self.url = ""
        self.otp_ids: dict[str, asyncio.Future[str]] = {}
        self.answers: dict[str, list[str]] = {}
        self.approved_at: dict[str, float] = {}
        """Monotonic time of each number's first APPROVED verify."""

    def expect(self, recipient: str) -> asyncio.Future[str]:
        """The future that send-otp's ``otp_id`` for ``recipient`` resolves (created before the send)."""
        return self.otp_ids.setdefault(recipient, asyncio.get_running_loop().create_future())

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Phone]:
        app = web.Application()
        app.router.add_post("/typed", self._typed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/typed"
        try:
            yield self
        finally:
            await runner.cleanup()

    async def _typed(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        typed = await request.json()
        recipient, code = str(typed["recipient"]), str(typed["code"])
        expected = self.otp_ids.get(recipient)
        if expected is None:
            return web.json_response({"error": "not a number of this run"}, status=404)
        await asyncio.wait([expected], timeout=PHONE_WAITS_FOR_SEND)
        if not _resolved(expected):
            return web.json_response({"error": "send-otp gave this number no otp_id"}, status=404)
        otp_id = expected.result()
        body = {"otp_id": otp_id, "otp_code": code}
        async with self.session.post(self.api_url + VERIFY_PATH, json=body, headers=self.headers) as response:
            answer = await response.json()
        status = str(answer.get("status", f"HTTP_{response.status}"))
        self.answers.setdefault(recipient, []).append(status)
        if status == "APPROVED":
            self.approved_at.setdefault(recipient, time.monotonic())
        return web.json_response({"status": status})


async def run(stack: BenchStack, sandbox: Sandbox, plan: ConversionPlan, progress: Progress) -> dict[str, Any]:
    """Both runs, side by side; the stack is given its own settings back at the end."""
    found: dict[str, Any] = {"kind": "conversion", "parameters": _parameters(plan)}
    try:
        for name in RUNS:
            workflow = name == "workflow"
            progress.begin(f"conversion_{name}")
            await asyncio.to_thread(stack.restart, stack_settings(plan, stack, workflow))
            found[name] = await _one_run(stack, sandbox, plan, workflow, progress)
            row = found[name]
            receipt_p95 = row["send_to_receipt_ms"]["p95"]
            progress.end(f"{row['converted']}/{row['sent']} converted, send -> delivered receipt p95 {receipt_p95} ms")
    finally:
        await asyncio.to_thread(stack.restart, {})
    return found


async def _one_run(
    stack: BenchStack, sandbox: Sandbox, plan: ConversionPlan, workflow: bool, progress: Progress
) -> dict[str, Any]:
    if not await asyncio.to_thread(stack.settle, SETTLE_SECONDS):
        print(f"\nthe stack was still busy after {SETTLE_SECONDS:.0f} s: its queue was dropped", file=sys.stderr)
    await sandbox.reset()
    session = sandbox.session
    secret = stack.env["OTP_SECRET_KEY"]
    octopush_callback = {"url": callback_url(stack.api_url, secret, VENDOR_B)}
    await put(session, f"{stack.sandbox_url}/_sandbox/callbacks/{VENDOR_B}", octopush_callback)
    fault = {"silent_drop_rate": plan.drop_rate, "prefix": plan.prefix}
    await put(session, f"{stack.sandbox_url}/_sandbox/faults/{VENDOR_A}", fault)
    phone = Phone(stack.api_url, stack.token, session)
    async with phone.running():
        await put(
            session,
            f"{stack.sandbox_url}/_sandbox/phone",
            {"url": phone.url, "token": phone.token, "delay_ms": list(plan.phone_delay_ms)},
        )
        recipients = _numbers(plan.prefix, plan.otps)
        sent_at: dict[str, float] = {}
        headers = {"Authorization": f"Bearer {stack.token}"}

        async def send(recipient: str) -> None:
            sent_at[recipient] = time.monotonic()
            body = {"recipient": recipient, "content": "Your code is {}"}
            async with session.post(stack.api_url + SEND_PATH, json=body, headers=headers) as response:
                answer = await response.json()
            if response.status == 200:
                phone.expect(recipient).set_result(str(answer["otp_id"]))
            else:
                phone.expect(recipient).cancel()

        started = time.monotonic()
        sends = []
        for index, recipient in enumerate(recipients):
            phone.expect(recipient)
            await asyncio.sleep(max(0.0, started + index / plan.rate - time.monotonic()))  # fixed-rate pacing
            sends.append(asyncio.create_task(send(recipient)))
            progress.update(0.5 * (index + 1) / plan.otps, f"{index + 1} sent, {len(phone.approved_at)} converted")
        await asyncio.gather(*sends)
        last_code = plan.phone_delay_ms[1] / 1000 + (plan.deadline if workflow else 0.0) + TYPING_GRACE
        stop_at = time.monotonic() + last_code
        while len(phone.approved_at) < len(recipients) and time.monotonic() < stop_at:
            await asyncio.sleep(SAMPLE_INTERVAL)  # bounded wait: a dropped code of the plain chain never comes
            done = 1 - (stop_at - time.monotonic()) / last_code
            progress.update(0.5 + 0.5 * done, f"{len(phone.approved_at)} converted")
        await delete(session, f"{stack.sandbox_url}/_sandbox/phone")
    otp_ids = {recipient: future.result() for recipient, future in phone.otp_ids.items() if _resolved(future)}
    reports = await fetch_reports(stack, list(otp_ids.values()))
    approved = [(phone.approved_at[r] - sent_at[r]) * 1000 for r in recipients if r in phone.approved_at]
    return _summary(plan, workflow, len(otp_ids), approved, phone, reports)


def _summary(
    plan: ConversionPlan,
    workflow: bool,
    sent: int,
    approved_ms: list[float],
    phone: Phone,
    reports: list[dict[str, Any]],
) -> dict[str, Any]:
    to_receipt: list[float] = []
    b_latency: list[float] = []
    delivered_by: dict[str, int] = {}
    second_steps = 0
    for report in reports:
        delivered = [a for a in report.get("attempts", []) if a.get("receipt") == "DELIVERED" and a.get("receipt_at")]
        if delivered:
            created = datetime.fromisoformat(report["created_at"])
            receipt_at = datetime.fromisoformat(delivered[0]["receipt_at"])
            to_receipt.append((receipt_at - created).total_seconds() * 1000)
            vendor = str(delivered[0].get("vendor"))
            delivered_by[vendor] = delivered_by.get(vendor, 0) + 1
            if vendor == VENDOR_B and delivered[0].get("receipt_latency_ms") is not None:
                b_latency.append(float(delivered[0]["receipt_latency_ms"]))
        steps = (report.get("workflow") or {}).get("steps") or []
        second_steps += len(steps) > 1
    answers: dict[str, int] = {}
    for statuses in phone.answers.values():
        for status in statuses:
            answers[status] = answers.get(status, 0) + 1
    receipt = percentiles(to_receipt)
    summary: dict[str, Any] = {
        "workflow": workflow,
        "sent": sent,
        "converted": len(approved_ms),
        "converted_share": round(len(approved_ms) / sent, 3) if sent else 0.0,
        "delivered_receipts": len(to_receipt),
        "delivered_by": delivered_by,
        "second_steps": second_steps,
        "phone_answers": answers,
        "send_to_receipt_ms": receipt,
        "send_to_approved_ms": percentiles(approved_ms),
        "vendor_b_receipt_latency_ms": percentiles(b_latency),
    }
    if workflow:
        b_p95 = summary["vendor_b_receipt_latency_ms"]["p95"] or 0.0
        bound = round(plan.deadline * 1000 + b_p95 + BOUND_MARGIN_MS, 2)
        summary["receipt_p95_bound_ms"] = bound
        summary["receipt_p95_bound_met"] = receipt["p95"] is not None and receipt["p95"] <= bound
    return summary


def markdown(conversion: dict[str, Any]) -> str:
    """The two runs side by side, for the README."""
    p = conversion["parameters"]
    delay = f"{p['phone_delay_ms'][0] / 1000:g}-{p['phone_delay_ms'][1] / 1000:g} s"
    lines = [
        f"Conversion: {p['otps']} OTPs to {p['prefix']} at {p['rate']:g}/s, {VENDOR_A} silently drops "
        f"{p['drop_rate']:.0%} of them, {VENDOR_B} delivers all, the phone types each code after {delay}",
        "",
        "| run | converted | send -> delivered receipt p50 / p95 (ms) | send -> APPROVED p50 / p95 (ms) | notes |",
        "|---|---:|---|---|---|",
    ]
    for name in RUNS:
        row = conversion[name]
        receipt, approved = row["send_to_receipt_ms"], row["send_to_approved_ms"]
        if row["workflow"]:
            met = "met" if row["receipt_p95_bound_met"] else "not met"
            note = (
                f"[{VENDOR_A} sms, deadline {p['deadline']:g} s] -> [{VENDOR_B} sms]; {row['second_steps']} second "
                f"steps; receipt p95 <= {row['receipt_p95_bound_ms']} ms (deadline + {VENDOR_B} p95 receipt "
                f"{row['vendor_b_receipt_latency_ms']['p95']} ms + 1 s): {met}"
            )
        else:
            note = f"chain [{VENDOR_A}, {VENDOR_B}], no workflow"
        lines.append(
            f"| {name} | {row['converted']}/{row['sent']} ({row['converted_share']:.1%}) | "
            f"{receipt['p50']} / {receipt['p95']} | {approved['p50']} / {approved['p95']} | "
            f"{note}; delivered by {row['delivered_by']} |"
        )
    return "\n".join(lines)


def _parameters(plan: ConversionPlan) -> dict[str, Any]:
    return {
        "otps": plan.otps,
        "rate": plan.rate,
        "phone_delay_ms": list(plan.phone_delay_ms),
        "deadline": plan.deadline,
        "drop_rate": plan.drop_rate,
        "prefix": plan.prefix,
        "vendor_a": VENDOR_A,
        "vendor_b": VENDOR_B,
    }


def _numbers(prefix: str, count: int) -> list[str]:
    """``count`` distinct French mobile numbers (``prefix`` is +33), fresh for each run."""
    found: set[str] = set()
    while len(found) < count:
        found.add(f"{prefix}6{random.choice('1245678')}{random.randrange(10**7):07d}")
    return sorted(found)


def _resolved(future: asyncio.Future[str]) -> bool:
    return future.done() and not future.cancelled()


async def put(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    """PUT ``body`` to one of the sandbox's control routes."""
    async with session.put(url, json=body) as response:
        response.raise_for_status()


async def delete(session: aiohttp.ClientSession, url: str) -> None:
    """DELETE one of the sandbox's control routes."""
    async with session.delete(url) as response:
        response.raise_for_status()
