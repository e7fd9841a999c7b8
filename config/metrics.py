"""Each process's own Prometheus registry: the API and a worker export only their own metric families.

The default registry of ``prometheus_client`` is global to the interpreter, so a process that imports
both sides' metric modules (the CLI does) would export the other side's families, empty. Each side
declares its metrics on a registry of its own, made here with the process, platform and GC collectors.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector


def process_registry() -> CollectorRegistry:
    """A registry holding this process's CPU, memory, file descriptors, GC and Python version."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
