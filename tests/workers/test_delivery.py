"""The pure parts of the provider chain: backoff and route order."""

import pytest

from config import ProviderSettings
from workers.delivery import backoff

VENDOR = ProviderSettings(name="v", kind="console", base_url="http://127.0.0.1:1", retry_delay=1.0, retry_delay_max=8.0)


@pytest.mark.parametrize(("tries", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0)])
def test_backoff_doubles_up_to_the_maximum_with_jitter(tries: int, ceiling: float) -> None:
    delays = [backoff(VENDOR, tries) for _ in range(200)]

    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(set(delays)) > 1
