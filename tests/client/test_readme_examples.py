"""The README's HTTP client examples run verbatim from another project: a directory outside the repository,
a fresh virtual environment holding only ``pip install ./client``, the URL and token in the environment.

The examples are read from README.md here, so the README and this test cannot drift apart.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import Api

ROOT = Path(__file__).resolve().parents[2]
RECIPIENT = "+33612345678"
"""The number the examples send to."""
INSTALL_TIMEOUT = 100.0
RUN_TIMEOUT = 20.0
SERVER_PACKAGES = ("bench", "cli", "client", "config", "devtools", "dispatcher", "sandbox", "vendors", "workers")


def readme_examples() -> list[str]:
    """The Python blocks of the README's "Python client" section that use the HTTP client."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Python client\n", 1)[1].split("\n## ", 1)[0]
    assert "pip install ./client" in section
    blocks = re.findall(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    return [block for block in blocks if "otp_dispatcher_client" in block]


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A directory outside the repository and the Python of a fresh venv there, with only the client installed
    (from a copy of client/, so the build leaves nothing in the repository)."""
    where = tmp_path_factory.mktemp("another-project")
    assert not where.is_relative_to(ROOT)
    source = shutil.copytree(
        ROOT / "client",
        tmp_path_factory.mktemp("source") / "client",
        ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"),
    )
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", where / "venv"], check=True, timeout=INSTALL_TIMEOUT)
    python = where / "venv" / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-cache-dir", source],
        check=True,
        cwd=where,
        env=env,
        timeout=INSTALL_TIMEOUT,
    )
    return where, python


def test_the_readme_has_an_async_and_a_sync_example() -> None:
    examples = readme_examples()

    assert ["AsyncOtpClient" in example for example in examples] == [True, False]
    assert "OtpClient(" in examples[1]


@pytest.mark.slow
def test_the_fresh_venv_has_none_of_the_servers_packages(outside: tuple[Path, Path]) -> None:
    where, python = outside
    probe = "import importlib.util, sys; print([n for n in sys.argv[1:] if importlib.util.find_spec(n)])"

    found = subprocess.run(
        [python, "-c", probe, "otp_dispatcher_client", *SERVER_PACKAGES],
        cwd=where,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
        timeout=RUN_TIMEOUT,
    )

    assert found.stdout.strip() == "['otp_dispatcher_client']"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (0, r"sent (?P<otp_id>[0-9a-f-]+) OPEN\ncode: APPROVED\nVERIFIED d7 1\n"),
        (1, r"sent (?P<otp_id>[0-9a-f-]+) OPEN\ncode: APPROVED\n"),
    ],
    ids=["async", "sync"],
)
async def test_a_readme_example_sends_and_verifies_from_another_project(
    api: Api, outside: tuple[Path, Path], example: int, expected: str
) -> None:
    where, python = outside
    script = where / f"example_{example}.py"
    script.write_text(readme_examples()[example])
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONUNBUFFERED": "1",  # the first line must reach us before the example waits for the code
        "OTP_API_URL": api.stack.api_url,
        "OTP_API_TOKEN": api.stack.token,
    }
    example_run = await asyncio.create_subprocess_exec(
        python, script, cwd=where, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert example_run.stdout is not None
    first = await asyncio.wait_for(example_run.stdout.readline(), RUN_TIMEOUT)
    sent = re.fullmatch(r"sent (\S+) OPEN\n", first.decode())
    assert sent is not None, first + await example_run.stderr.read()  # type: ignore[union-attr]

    await api.delivered(sent[1])
    code = (await api.inbox(RECIPIENT))["code"]
    rest, errors = await asyncio.wait_for(example_run.communicate(f"{code}\n".encode()), RUN_TIMEOUT)

    assert example_run.returncode == 0, errors.decode()
    printed = re.fullmatch(expected, (first + rest).decode())
    assert printed is not None, first + rest
    assert printed["otp_id"] == sent[1]
