"""Worker side: the Celery app, the delivery task, vendor adapters, the sandbox vendors and the CLI."""

from workers.app import make_celery
from workers.checker import ProviderChecker

__all__ = ["ProviderChecker", "make_celery"]
