"""``python -m cli``: the ``otp-dispatcher`` command (how ``dev``, the tests and the benchmark start processes)."""

import sys

from cli.main import main

sys.exit(main())
