"""Where the CPU goes at peak: py-spy samples the API and one worker, summarised per package and function.

py-spy (the ``bench`` extra) reads the processes' stacks from outside, so the stack runs unchanged. Only
samples of the thread holding the GIL are kept (``--gil``): Python CPU, not threads waiting. A sample
counts for a package "inclusive" if any frame of its stack is in that package, "self" if the innermost
frame is.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.stack import BenchStack

RATE = 100
TOP = 15
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+\.py)(?::\d+)?\)$")


async def sample(stack: BenchStack, seconds: float, delay: float) -> dict[str, Any]:
    """After ``delay`` seconds, sample the API and the first worker for ``seconds``."""
    py_spy = _py_spy()
    if py_spy is None:
        return {"error": "py-spy is not installed (pip install -e '.[bench]')"}
    await asyncio.sleep(delay)
    targets = {"api": stack.children["api"].pid, "worker0": stack.children["worker0"].pid}
    outputs = {name: stack.workdir / f"{name}.py-spy.txt" for name in targets}
    runs = [
        await asyncio.create_subprocess_exec(
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(RATE),
            "--format",
            "raw",
            "--nonblocking",
            "--gil",
            "--output",
            str(outputs[name]),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        for name, pid in targets.items()
    ]
    errors = [(await run.communicate())[1].decode(errors="replace") for run in runs]
    summary: dict[str, Any] = {"seconds": seconds, "rate_hz": RATE}
    for (name, output), (run, error) in zip(outputs.items(), zip(runs, errors, strict=True), strict=True):
        if run.returncode != 0 or not output.exists():
            summary[name] = {"error": error.strip().splitlines()[-1:] or [f"py-spy exited {run.returncode}"]}
        else:
            summary[name] = summarise(output.read_text())
    return summary


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def summarise(collapsed: str) -> dict[str, Any]:
    """Shares of the samples, by package (inclusive and self) and by innermost function."""
    total = 0
    inclusive: Counter[str] = Counter()
    leaf_package: Counter[str] = Counter()
    leaf_function: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in map(_frame, stack.split(";")) if frame is not None]
        if not frames:
            continue
        total += count
        for package in {package for package, _ in frames}:
            inclusive[package] += count
        package, function = frames[-1]
        leaf_package[package] += count
        leaf_function[f"{package}: {function}"] += count

    def shares(counter: Counter[str]) -> dict[str, float]:
        return {key: round(value / total, 3) for key, value in counter.most_common(TOP)} if total else {}

    return {
        "samples": total,
        "inclusive_by_package": shares(inclusive),
        "self_by_package": shares(leaf_package),
        "self_by_function": shares(leaf_function),
    }


def _frame(text: str) -> tuple[str, str] | None:
    """(package, function) of one py-spy frame ``function (path/to/file.py:line)``."""
    match = FRAME.match(text.strip())
    if match is None:
        return None
    path = Path(match["file"])
    parts = path.parts
    if "site-packages" in parts:
        package = parts[parts.index("site-packages") + 1]
    elif any(part.startswith("python3") for part in parts):
        package = "stdlib " + path.stem
    else:
        package = parts[0] if len(parts) > 1 else path.stem
    package = package.removesuffix(".py")
    return package, f"{match['function']} ({path.name})"
