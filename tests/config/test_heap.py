"""Objects alive at the end of start-up are left out of garbage collection."""

import gc
from collections.abc import Iterator

import pytest

from config.heap import freeze_startup_objects


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_objects_alive_at_start_up_are_frozen_out_of_collections(unfrozen: None) -> None:
    startup_object: list[object] = []  # lists are always tracked by the collector
    assert any(startup_object is tracked for tracked in gc.get_objects())

    freeze_startup_objects()

    assert gc.get_freeze_count() > 0
    assert not any(startup_object is tracked for tracked in gc.get_objects())


def test_objects_made_after_start_up_are_still_collected(unfrozen: None) -> None:
    freeze_startup_objects()
    later: dict[str, object] = {}
    later["self"] = later  # a cycle only the collector can free

    assert gc.isenabled()
    assert any(later is tracked for tracked in gc.get_objects())
