"""Garbage collection tuned for a long-running server process.

Python's full collection walks every object the process holds; in a process that has imported Celery,
kombu, aiohttp and pydantic that is hundreds of thousands of objects, and the pause (up to 200 ms
measured under load, see README "Benchmarks") lands on whatever request is in flight. Objects that
exist once start-up is over live as long as the process, so they are frozen out of the collector.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Exclude every object alive now from future collections; call once start-up is done."""
    gc.collect()
    gc.freeze()
