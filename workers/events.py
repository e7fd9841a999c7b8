"""Task events that reach Flower: every event a worker sends is published, none is lost to a thread race.

Celery buffers task events (``task-received``, ``-started``, ``-succeeded`` ...) and publishes them in
groups. With the threads pool, the pool threads that finish tasks append to that buffer while the
consumer's thread flushes it: Celery 5.6's ``EventDispatcher.send`` appends without the dispatcher's lock,
and ``flush`` publishes the buffer and then empties it, so an event appended in between was dropped
(Flower then showed finished tasks as RECEIVED or STARTED for ever). ``TaskEventDispatcher`` appends
under the lock and takes the buffer out before publishing it; ``EventFlushingConsumer`` asks for the
flush through the hub's thread-safe ``call_soon`` (Celery 5.6 adds to the hub's ready set from the pool
thread directly: with kombu 5.7 that addition can be lost, with no wake-up).
"""

from __future__ import annotations

from typing import Any

from celery.app.events import Events
from celery.events.dispatcher import EventDispatcher
from celery.events.event import Event, group_from
from celery.utils.time import utcoffset
from celery.worker.consumer import Consumer


class TaskEventDispatcher(EventDispatcher):  # type: ignore[misc]
    """Celery's event dispatcher, with its group buffer guarded by its lock."""

    def send(self, type: str, blind: bool = False, **fields: Any) -> Any:
        group = group_from(type)
        if not self.enabled or group not in self.buffer_group:
            return super().send(type, blind=blind, **fields)
        if self.groups and group not in self.groups:
            return None
        clock = self.clock.forward()
        event = Event(type, hostname=self.hostname, utcoffset=utcoffset(), pid=self.pid, clock=clock, **fields)
        with self.mutex:
            buffer = self._group_buffer[group]
            buffer.append(event)
            full = len(buffer) >= self.buffer_limit
        if full:
            self.flush(errors=False)
        elif self.on_send_buffered:
            self.on_send_buffered()
        return None

    def flush(self, errors: bool = True, groups: bool = True) -> None:
        with self.mutex:
            if errors:
                failed = list(self._outbound_buffer)
                self._outbound_buffer.clear()
                for event, routing_key, _ in failed:
                    self._publish(event, self.producer, routing_key)
            if groups:
                for group, events in self._group_buffer.items():
                    if events:
                        taken = events[:]
                        events.clear()
                        self._publish(taken, self.producer, f"{group}.multi")


class TaskEvents(Events):  # type: ignore[misc]
    """``app.events`` with the dispatcher above."""

    dispatcher_cls = TaskEventDispatcher


class EventFlushingConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, flushing buffered task events through the hub's thread-safe ``call_soon``."""

    def on_send_event_buffered(self) -> None:
        if self.hub:
            self.hub.call_soon(self._flush_events)
