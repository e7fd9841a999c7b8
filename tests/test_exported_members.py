"""Every package states its public surface (``__all__``), and every name it states exists."""

import importlib

import pytest

PACKAGES = [
    "cli",
    "config",
    "devtools",
    "dispatcher",
    "dispatcher.store",
    "otp_dispatcher_client",
    "sandbox",
    "vendors",
    "workers",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_exists_once(package: str) -> None:
    module = importlib.import_module(package)

    assert len(set(module.__all__)) == len(module.__all__)
    assert [name for name in module.__all__ if not hasattr(module, name)] == []
