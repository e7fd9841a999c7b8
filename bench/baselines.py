"""The baselines, measured in the same run as the scenarios: plain Celery on the same Redis and sandbox.

- ``noop_drain``: a prefork worker (2 processes) drains no-op tasks: the bare cost of a Celery message;
- ``plain_celery_per_otp``: two thread-pool workers, one shared asyncio loop and aiohttp session per
  process, one D7 POST per message (what the dispatcher's design is measured against);
- ``naive_prefork``: a prefork worker (2 processes), one blocking ``urllib`` POST per message, against
  the 200 ms vendor.

The one-message-per-OTP pipeline is fed by ``apply_async`` from a producer process of its own while
its workers consume, as a dispatcher's API would feed it (but with no HTTP in front). The other two
measure the consumer only: their messages are queued before the workers start (``apply_async`` costs
about 1 ms of CPU per message, so the harness publishes one message and pushes copies of it, with
fresh ids, exactly what ``apply_async`` writes, to Redis in bulk).
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis

from bench.baseline_worker import DELIVER_SYNC_TASK, DELIVER_TASK, NOOP_TASK, QUEUE, make_app, produce
from bench.procs import tree
from bench.progress import Progress
from bench.stack import BenchStack, Cpu, Sandbox
from devtools.processes import spawn, stop_processes, wait_ready

SAMPLE_INTERVAL = 0.1
PUSH_CHUNK = 1000


@dataclass(frozen=True)
class Baseline:
    name: str
    task: str
    nodes: int
    """Worker processes started with ``python -m bench.baseline_worker``."""
    worker_options: tuple[str, ...]
    counted_by: str
    """``queue``: messages taken off the queue; ``vendor``: D7 calls the sandbox received."""
    latency_ms: float = 0.0
    live_producer: bool = False
    """Published by ``apply_async`` from a process of its own while the workers consume (else queued
    beforehand)."""


NOOP_DRAIN = Baseline("noop_drain", NOOP_TASK, 1, ("--pool=prefork", "--concurrency=2"), "queue")
PLAIN_CELERY_PER_OTP = Baseline(
    "plain_celery_per_otp", DELIVER_TASK, 2, ("--pool=threads", "--concurrency=64"), "vendor", live_producer=True
)
NAIVE_PREFORK = Baseline(
    "naive_prefork", DELIVER_SYNC_TASK, 1, ("--pool=prefork", "--concurrency=2"), "vendor", latency_ms=200.0
)


async def run_baseline(
    baseline: Baseline, stack: BenchStack, sandbox: Sandbox, count: int, max_seconds: float, progress: Progress
) -> dict[str, Any]:
    """Queue ``count`` messages, start the baseline's workers, and measure how fast they get through."""
    progress.begin(baseline.name)
    await sandbox.reset()
    if baseline.latency_ms:
        await sandbox.latency(baseline.latency_ms)
    client = redis.Redis.from_url(stack.redis_url)
    try:
        client.delete(QUEUE)
        if not baseline.live_producer:
            publish_copies(client, stack.redis_url, baseline.task, count)
        logs = stack.workdir / "logs"
        nodes = [
            spawn(
                [
                    "-m",
                    "bench.baseline_worker",
                    stack.redis_url,
                    stack.sandbox_url,
                    *baseline.worker_options,
                    "--without-gossip",
                    "--without-mingle",
                    "-n",
                    f"{baseline.name}{index}@%h",
                ],
                stack.env,
                logs / f"{baseline.name}{index}.log",
            )
            for index in range(baseline.nodes)
        ]
        try:
            for index, node in enumerate(nodes):
                wait_ready(node, logs / f"{baseline.name}{index}.log", lambda log: "ready." in log)
            cpu = Cpu({f"worker{index}": tree(node.pid) for index, node in enumerate(nodes)})
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                producing = (
                    asyncio.get_running_loop().run_in_executor(
                        pool, produce, stack.redis_url, baseline.task, count, max_seconds
                    )
                    if baseline.live_producer
                    else None
                )
                samples = await _sample(baseline, client, sandbox, count, max_seconds, progress)
                producer: dict[str, Any] = {}
                if producing is not None:
                    published, producer_cpu = await producing
                    producer = {"published": published, "producer_cpu_seconds": round(producer_cpu, 2)}
                used = cpu.used(producer.get("producer_cpu_seconds", 0.0))
        finally:
            stop_processes(nodes)
            client.delete(QUEUE)
    finally:
        client.close()
    result = {
        "kind": "baseline",
        "parameters": {
            "messages": count,
            "max_seconds": max_seconds,
            "worker_processes": baseline.nodes,
            "worker_options": list(baseline.worker_options),
            "vendor_latency_ms": baseline.latency_ms,
            "counted_by": baseline.counted_by,
            "producer": "apply_async from one process, while the workers consume"
            if baseline.live_producer
            else "queued before the workers start (copies of one apply_async message)",
        },
        **_rate(samples),
        **producer,
        "cpu": used,
    }
    progress.end(f"{result['throughput']:.1f}/s over {result['measured_seconds']:.1f} s")
    return result


def publish_copies(client: redis.Redis, redis_url: str, task: str, count: int) -> None:
    """Queue ``count`` messages of ``task``, the n-th with argument n: one published by Celery, the
    rest copies of it with their own ids."""
    make_app(redis_url, "").send_task(task, args=[] if task == NOOP_TASK else [0], queue=QUEUE)
    raw = client.rpop(QUEUE)
    assert isinstance(raw, bytes)
    template = json.loads(raw)
    args, kwargs, embed = json.loads(base64.b64decode(template["body"]))
    pipe = client.pipeline(transaction=False)
    for number in range(count):
        message = json.loads(raw)
        task_id = str(uuid.uuid4())
        arguments = [number] if args else []
        message["body"] = base64.b64encode(json.dumps([arguments, kwargs, embed]).encode()).decode()
        message["headers"].update(id=task_id, root_id=task_id, argsrepr=repr(arguments))
        message["properties"].update(correlation_id=task_id, delivery_tag=str(uuid.uuid4()))
        pipe.lpush(QUEUE, json.dumps(message))
        if number % PUSH_CHUNK == PUSH_CHUNK - 1:
            pipe.execute()
    pipe.execute()


async def _sample(
    baseline: Baseline, client: redis.Redis, sandbox: Sandbox, count: int, max_seconds: float, progress: Progress
) -> list[tuple[float, int]]:
    """(time, messages done) every ``SAMPLE_INTERVAL`` until all are done or ``max_seconds`` passed
    since the first was done."""
    samples: list[tuple[float, int]] = []
    first: float | None = None
    while True:
        if baseline.counted_by == "queue":
            done = count - int(client.llen(QUEUE))
        else:
            done = await sandbox.vendor_calls()
        now = time.monotonic()
        samples.append((now, done))
        if done and first is None:
            first = now
        elapsed = now - first if first is not None else 0.0
        progress.update(max(done / count, elapsed / max_seconds), f"{done} of {count} messages")
        if done >= count or elapsed > max_seconds:
            return samples
        await asyncio.sleep(SAMPLE_INTERVAL)


def _rate(samples: list[tuple[float, int]]) -> dict[str, Any]:
    """Messages per second from the first sample with work done to the last."""
    started = next((index for index, (_, done) in enumerate(samples) if done), len(samples) - 1)
    start_time, start_done = samples[max(started - 1, 0)]
    end_time, end_done = samples[-1]
    seconds = max(end_time - start_time, 1e-9)
    return {"throughput": round((end_done - start_done) / seconds, 1), "done": end_done, "measured_seconds": seconds}
