"""Dev tooling outside the product: the ``dev`` supervisor, the embedded Redis, child-process helpers."""

from devtools.embedded_redis import EmbeddedRedis
from devtools.processes import free_port, listening, start_process, stop_processes

__all__ = ["EmbeddedRedis", "free_port", "listening", "start_process", "stop_processes"]
