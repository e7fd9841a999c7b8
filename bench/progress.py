"""A one-line progress bar on stderr, redrawn in place: which scenario, how far, what it counts."""

from __future__ import annotations

import sys
from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(self, scenarios: int, stream: TextIO = sys.stderr) -> None:
        self.scenarios = scenarios
        self.stream = stream
        self.current = 0
        self.name = ""

    def begin(self, name: str) -> None:
        self.current += 1
        self.name = name
        self.update(0.0, "starting")

    def update(self, fraction: float, detail: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        done = int(fraction * WIDTH)
        bar = "#" * done + "-" * (WIDTH - done)
        line = f"[{self.current}/{self.scenarios}] {self.name:<22} [{bar}] {fraction:4.0%}  {detail}"
        self.stream.write(f"\r{line:<110}")
        self.stream.flush()

    def end(self, summary: str) -> None:
        self.update(1.0, summary)
        self.stream.write("\n")
        self.stream.flush()
