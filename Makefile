# The two commands: `make demo` and `make test`. Both start from nothing but
# Python 3.11, make and apt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   ?= examples/global_counter.py
PORT   ?= 8501

.PHONY: demo replicas test bench lint venv system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalled whenever pyproject.toml changes.
$(VENV)/.installed-runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@ $(VENV)/.installed-runtime

# The package with the redis extra (redis, msgpack), for `make replicas`.
$(VENV)/.installed-redis: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[redis]'
	touch $@ $(VENV)/.installed-runtime

venv: $(VENV)/.installed-test

system-deps:
	@bash scripts/ensure-system-deps.sh

demo: $(VENV)/.installed-runtime
	$(BIN)/streamlit run $(DEMO) --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

# Two replicas of examples/chat.py sharing one redis-server (examples/replicas/README.md).
# REDIS_PORT (6390), PORT1 (8501), PORT2 (8502) override the ports.
replicas: $(VENV)/.installed-redis
	@bash scripts/replicas.sh

test: $(VENV)/.installed-test system-deps
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.run --full

lint: $(VENV)/.installed-test
	$(BIN)/ruff check server_state tests benchmarks examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
