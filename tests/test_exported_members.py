"""Every package states its public surface, and every name it states exists."""

import importlib

import pytest


@pytest.mark.parametrize("package", ["config", "dispatcher", "workers", "workers.providers", "workers.sandbox"])
def test_all_names_exist_and_are_sorted(package: str) -> None:
    module = importlib.import_module(package)

    assert module.__all__ == sorted(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)
