"""Workflow configuration: what the TOML file may say, what start-up refuses, and which workflow a number gets."""

from pathlib import Path

import pytest

from config import ConfigError, load_settings
from config.workflows import DEFAULT_DEADLINES, LEGACY_WORKFLOW, Workflow, WorkflowStep

CHAIN = """
[[providers]]
name = "d7"
kind = "d7"
base_url = "http://127.0.0.1:8090"
api_token = "t"

[[providers]]
name = "octopush"
kind = "octopush"
base_url = "http://127.0.0.1:8090"
login = "me"
password = "key"
"""

EXAMPLE = (
    CHAIN
    + """
[route_groups]
transport = ["octopush"]

[workflows.default]
steps = [
  { vendor = "d7", deadline = 10 },
  { channel = "SMS", group = "transport" },
]

[workflows.whatsapp]
steps = [{ vendor = "d7" }, { channel = "SMS" }]

[workflow_routes]
"+44" = "whatsapp"
"""
)


def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    config = tmp_path / "otp.toml"
    config.write_text(text)
    monkeypatch.setenv("OTP_CONFIG_FILE", str(config))


def test_workflows_route_groups_and_workflow_routes_come_from_the_toml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configured(monkeypatch, tmp_path, EXAMPLE)

    settings = load_settings()

    assert settings.workflow_for("+33612345678") == "default"
    assert settings.workflow_for("+447911123456") == "whatsapp"
    default = settings.workflow("default")
    assert (default.steps[1].group, default.deadline(0, "SMS"), default.deadline(1, "SMS")) == ("transport", 10, None)


def test_without_workflows_every_number_follows_one_step_with_no_deadline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configured(monkeypatch, tmp_path, CHAIN)

    settings = load_settings()

    assert settings.workflow_for("+33612345678") == LEGACY_WORKFLOW
    legacy = settings.workflow(LEGACY_WORKFLOW)
    assert (legacy.last_step, legacy.deadline(0, "SMS"), legacy.channels("WhatsApp")) == (0, None, ("WhatsApp",))


def test_a_step_without_a_deadline_waits_the_default_of_its_channel() -> None:
    workflow = Workflow(steps=(WorkflowStep(), WorkflowStep(channel="SMS", deadline=5), WorkflowStep(channel="SMS")))

    assert workflow.deadline(0, "WhatsApp") == DEFAULT_DEADLINES["WhatsApp"]
    assert workflow.deadline(1, "WhatsApp") == 5
    assert workflow.channels("WhatsApp") == ("WhatsApp", "SMS", "SMS")


def test_a_later_step_may_call_with_the_code_by_voice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    configured(
        monkeypatch,
        tmp_path,
        CHAIN + '[workflows.default]\nsteps = [{ vendor = "d7", deadline = 3 }, { channel = "voice" }]\n',
    )

    workflow = load_settings().workflow("default")

    assert workflow.channels("SMS") == ("SMS", "voice")
    assert (workflow.deadline(0, "SMS"), workflow.deadline(1, "SMS")) == (3, None)


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ('[{ channel = "SMS" }]', "the first step goes out on the channel send-otp asks for"),
        ("[{ deadline = 5 }, {}]", "required after the first step"),
        ('[{ deadline = 2 }, { channel = "SMS" }]', "greater than or equal to 3"),
        ('[{ deadline = 5 }, { channel = "SMS", deadline = 5 }]', "the last step has none"),
        ('[{ vendor = "d7", group = "transport" }]', "a vendor or a group, not both"),
        ('[{ vendor = "nexmo" }]', "'nexmo' is not a configured provider"),
        ('[{ group = "cheap" }]', "'cheap' is not a route group"),
        ('[{ channel = "voice" }]', "the first step goes out on the channel send-otp asks for"),
        ('[{ deadline = 5 }, { channel = "fax" }]', "channel"),
    ],
)
def test_a_workflow_that_cannot_work_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, steps: str, problem: str
) -> None:
    configured(
        monkeypatch, tmp_path, CHAIN + f'[route_groups]\ntransport = ["octopush"]\n[workflows.w]\nsteps = {steps}\n'
    )

    with pytest.raises(ConfigError) as error:
        load_settings()

    assert problem in str(error.value)
    assert "workflows" in str(error.value)


def test_a_workflow_route_to_no_configured_workflow_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    configured(monkeypatch, tmp_path, CHAIN + '[workflow_routes]\n"+33" = "missing"\n')

    with pytest.raises(ConfigError, match="'missing' is not a configured workflow"):
        load_settings()
