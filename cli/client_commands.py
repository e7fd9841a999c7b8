"""``otp-dispatcher send / verify / status``: the HTTP API from a shell, through the HTTP client distribution.

The API's address and token come from the settings (``OTP_API_URL`` and ``OTP_API_TOKEN``; on the API's own
machine, its address and first token). Human output by default, one JSON object with ``--json``. An error
the API answers is one line on stderr with its stable code, exit status 1; ``verify`` exits 0 only when
the code is approved, so a script can branch on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import datetime
from enum import Enum
from typing import Any

from config import Settings

CLIENT_MISSING = "the HTTP client is not installed here; pip install ./client (from a clone of otp-dispatcher)"


def add_parsers(commands: Any) -> None:
    """The three sub-commands, on the CLI's sub-parser set."""
    send = commands.add_parser("send", help="ask the API for an OTP to a number")
    send.add_argument("recipient", help="the number, e.g. +33612345678")
    send.add_argument("--content", default="Your code is {}", help="the message, with {} where the code goes")
    send.add_argument("--channel", choices=["sms", "whatsapp"], help="D7's channel (default: SMS)")
    send.add_argument("--expiry", type=int, help="seconds the code stays valid")
    verify = commands.add_parser("verify", help="check a code the user typed (exit 0 only when APPROVED)")
    verify.add_argument("otp_id")
    verify.add_argument("code")
    status = commands.add_parser("status", help="an OTP's status and every delivery attempt")
    status.add_argument("otp_id")
    for parser in (send, verify, status):
        parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Carry out ``send``, ``verify`` or ``status`` against the API; the exit status."""
    try:
        from otp_dispatcher_client import OtpClient, OtpDispatcherError
    except ImportError:
        print(f"otp-dispatcher: {CLIENT_MISSING}", file=sys.stderr)
        return 2
    client = OtpClient(_api_url(settings), _api_token(settings))
    try:
        if args.command == "send":
            options = {"channel": args.channel, "expiry": args.expiry}
            answer: Any = client.send(args.recipient, args.content, **{k: v for k, v in options.items() if v})
        elif args.command == "verify":
            answer = client.verify(args.otp_id, args.code)
        else:
            answer = client.report(args.otp_id)
    except OtpDispatcherError as exc:
        print(f"otp-dispatcher: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(_plain(answer)) if args.json else _text(answer))
    return 1 if args.command == "verify" and answer != "APPROVED" else 0


def _api_url(settings: Settings) -> str:
    return settings.api_url or f"http://{settings.api_host}:{settings.api_port}"


def _api_token(settings: Settings) -> str:
    if settings.api_token.get_secret_value():
        return settings.api_token.get_secret_value()
    if settings.api_tokens:
        return settings.api_tokens[0].get_secret_value()
    return ""


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as objects, enums as their value, times in ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _text(answer: Any) -> str:
    if isinstance(answer, Enum):
        return str(answer.value)
    data = _plain(answer)
    if "attempts" not in data:
        return f"{data['otp_id']} {data['status']} (expires in {data['expiry']} s)"
    lines = [
        f"{data['otp_id']} {data['status']} to {data['recipient']}, delivered by {data['delivered_by'] or '-'}",
        *([f"  failure: {data['failure_reason']}"] if data["failure_reason"] else []),
    ]
    for attempt in data["attempts"]:
        lines.append(
            f"  send {attempt['send_number']}: {attempt['vendor']} {attempt['outcome']}"
            f" {attempt['error_code'] or ''} {attempt['latency_ms']:.0f} ms".rstrip()
        )
    return "\n".join(lines)
