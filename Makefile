# Short verbs. Each creates or refreshes .venv first, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint browser redis bench clean

$(STAMP): pyproject.toml client/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./client -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	exec $(BIN)/otp-dispatcher dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser test (Flower in headless Chromium) needs Debian's chromium and chromedriver: installed here when missing.
browser:
	devtools/ensure-chromium

# The sentinel failover and TLS tests run Debian's redis-server 7 (with TLS): installed here when missing.
redis:
	devtools/ensure-redis

test: lint browser redis
	$(BIN)/pytest

# The benchmark of issue #7 on a stack of its own (a few minutes); writes bench/results/<date>.json and .png.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/otp-dispatcher bench -- $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .otp-dispatcher .mypy_cache .ruff_cache .hypothesis
