"""Worker side: the Celery app and its tasks, delivery through the provider chain, breakers, postbacks."""

from workers.app import make_celery

__all__ = ["make_celery"]
