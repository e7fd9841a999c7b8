"""Workflows: the steps an OTP follows when a send is not confirmed delivered, each with a channel, a route and a
deadline.

A workflow is named in the TOML file (``[workflows.<name>]``); ``default`` is the one every number gets unless
``[workflow_routes]`` gives its country another. Without any, an OTP follows ``LEGACY``: one step, the country
route, no deadline (the behaviour before workflows). Step 0 goes out on the channel send-otp asked for (D7's
``channel``: SMS or WhatsApp); each later step names its own, and may also name ``voice`` (a call reading the code,
which only Octopush's ``voice_sms`` honours). A step names a ``vendor``, a ``group`` (a named list of vendors,
``[route_groups]``) or neither (the country route). Every step but the last has a deadline, from the moment its
vendor accepted the message: no delivered receipt by then, the next step goes out.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Channel = Literal["SMS", "WhatsApp", "voice"]
"""The channels an OTP's spec may go out on: send-otp's (D7's ``channel``: SMS or WhatsApp) and, for a later workflow
step only, ``voice`` (a call that reads the code: Octopush's ``voice_sms``; D7's API has no voice)."""
WorkflowChannel = Channel
"""The channels a later step may name."""
MIN_DEADLINE = 3.0
"""Seconds a step's deadline may be at least (the receipt round trip of a fast vendor)."""
MAX_DEADLINE = 3600.0
MAX_STEPS = 5
DEFAULT_DEADLINES: dict[str, float] = {"SMS": 30.0, "WhatsApp": 15.0, "voice": 60.0}
"""A step's deadline when the configuration leaves it out, by channel: estimates from published figures (README,
"Choosing deadlines": a healthy SMS OTP route's P99 is under 30 s, and users start asking for a resend by then;
WhatsApp's delivered status comes within seconds of an online handset; a call's outcome is known once it has rung
and the code was read out). Tune a step's own from ``otp_receipt_latency_seconds{vendor,channel}``: its p95 and a
margin."""
DEFAULT_WORKFLOW = "default"
"""The workflow every number follows unless ``workflow_routes`` names another for its country."""
LEGACY_WORKFLOW = ""
"""The name (none) of the one-step workflow an OTP follows when none is configured."""


class WorkflowStep(BaseModel):
    """One step: how the OTP goes out if the steps before it were not confirmed delivered in time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: WorkflowChannel | None = None
    """Required after the first step; the first step's channel is the one send-otp asks for."""
    vendor: str | None = None
    """Only this vendor."""
    group: str | None = None
    """Only the vendors of this route group, in its order."""
    deadline: float | None = Field(None, ge=MIN_DEADLINE, le=MAX_DEADLINE)
    """Seconds from the vendor accepting the message to the next step, unless a delivered receipt comes first
    (default: ``DEFAULT_DEADLINES`` for the step's channel); not on the last step."""

    @model_validator(mode="after")
    def _one_route(self) -> WorkflowStep:
        if self.vendor and self.group:
            raise ValueError("a step names a vendor or a group, not both")
        return self


class Workflow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: tuple[WorkflowStep, ...] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _steps_fit(self) -> Workflow:
        if self.steps[0].channel is not None:
            raise ValueError("steps[0].channel: the first step goes out on the channel send-otp asks for; leave it out")
        for index, step in enumerate(self.steps[1:], start=1):
            if step.channel is None:
                raise ValueError(f"steps[{index}].channel: required after the first step")
        if self.steps[-1].deadline is not None:
            raise ValueError(f"steps[{len(self.steps) - 1}].deadline: the last step has none (no step follows it)")
        return self

    @property
    def last_step(self) -> int:
        return len(self.steps) - 1

    def channel(self, step: int, asked: Channel) -> Channel:
        """The channel step ``step`` goes out on (``asked``: send-otp's channel, the first step's)."""
        return asked if step == 0 else self.steps[step].channel or asked

    def deadline(self, step: int, asked: Channel) -> float | None:
        """Seconds step ``step`` waits for a delivered receipt before the next step; None for the last one."""
        if step >= self.last_step:
            return None
        return self.steps[step].deadline or DEFAULT_DEADLINES[self.channel(step, asked)]

    def channels(self, asked: Channel) -> tuple[Channel, ...]:
        """The channels of the steps, in order."""
        return tuple(self.channel(step, asked) for step in range(len(self.steps)))


LEGACY = Workflow(steps=(WorkflowStep(),))
"""One step: the country route, on send-otp's channel, no deadline."""


def workflows_problem(
    vendors: set[str],
    groups: dict[str, tuple[str, ...]],
    workflows: dict[str, Workflow],
    routes: dict[str, str],
) -> tuple[str, str] | None:
    """The setting and what is wrong with it, when workflows, route groups or workflow routes name something not
    configured; None when they fit together. ``vendors`` empty: not checked (the chain is not known yet)."""
    if vendors:
        for name, members in groups.items():
            unknown = sorted(set(members) - vendors)
            if unknown or not members:
                return f"route_groups.{name}", f"names vendors that are not configured: {', '.join(unknown) or 'none'}"
    for name, workflow in workflows.items():
        for index, step in enumerate(workflow.steps):
            where = f"workflows.{name}.steps[{index}]"
            if step.vendor and vendors and step.vendor not in vendors:
                return f"{where}.vendor", f"{step.vendor!r} is not a configured provider"
            if step.group and step.group not in groups:
                return f"{where}.group", f"{step.group!r} is not a route group (route_groups)"
    for prefix, name in routes.items():
        if name not in workflows:
            return f"workflow_routes.{prefix!r}", f"{name!r} is not a configured workflow"
    return None
