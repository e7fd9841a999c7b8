"""The benchmark harness of issue #7: ``make bench`` or ``otp-dispatcher bench``.

It starts a stack of its own through the product's public surfaces (``otp-dispatcher`` sub-commands,
the HTTP API, the sandbox's control API), runs every scenario and baseline, and writes
``bench/results/<date>.json`` and ``.png``. Benchmarks are not tests: the suite only checks that the
harness runs on a tiny load.
"""

__all__: list[str] = []
