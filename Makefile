# The two commands: `make demo` and `make test`. Both start from nothing but
# Python 3.11, make and apt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   ?= examples/global_counter.py
PORT   ?= 8501

# The Streamlit releases `make test` runs the tests marked `releases` on, besides
# the whole suite on the latest release (in .venv). One release each side of every
# boundary the adapter (server_state/_streamlit.py) and the test harness branch
# on, see docs/streamlit-internals.md:
#   1.37  the floor: modules under runtime/scriptrunner (1.38 moved them),
#         ctx.current_fragment_id, blinker, no vanished-fragment skip (1.42),
#         the harness's old encodings (chat_input 1.43, selectbox/multiselect
#         1.45, radio 1.54) and no data-test-script-state (1.38)
#   1.57  the last release before ThreadState (1.58); scriptrunner_utils
#   1.61  ThreadState without RunLocation (1.62); the last on blinker (1.63)
#   1.66  RunLocation and signal_util; the last without track_settling (1.67)
# Each runs in its own venv (.venv-st-<release>), one after another: parallel
# runs on 2 cores make the run-count tests flaky; each prints its duration.
ST_MATRIX ?= 1.37.* 1.57.* 1.61.* 1.66.*
# On those releases only the tests marked `releases` run (ST_MARK), not every
# real-server test: the ones that exercise what differs between releases, each
# internal of docs/streamlit-internals.md that the adapter (or the harness's
# protocol) branches on or that Streamlit changed under it: following runs and
# how they end (st.stop against a stop from outside), the fragment id and
# widget-callback context, settling before a pushed rerun, live and
# disconnected sessions, reconnects to the same and to another server, widget
# state set through st.session_state, multipage client state, and the
# harness's encodings and browser waits. Our own logic on top (the history,
# replicas and Redis, the inspector, the repeat detector, the benchmarks and
# soak) does not depend on the release and runs on the latest one only.
# docs/streamlit-internals.md, "What runs on older releases", lists each
# release branch of the adapter and the marked test that covers it; a test
# for a new release-dependent internal gets the marker. Measured on 2 cores
# shared with other jobs: 1.37 in 108 s, where every real-server test took
# 329 s (about a third: ~2 min a release where CI took 5.5-6.5), 1-1.7 min
# more to create its venv the first time.
# `make test-streamlit V=1.50.*` runs those tests on that release; ST_TESTS=all
# runs the whole suite there, ST_MARK another marker expression (e.g.
# ST_MARK="server and not bench": every real-server test, as before).
V        ?=
ST_TESTS ?= marked
ST_MARK  ?= releases
ST_VENV  := .venv-st-$(patsubst %.*,%,$(V))

# The Pythons besides the default (3.11) that `make test` runs the unit and
# property suite on (UNIT_MARK), each in its own venv (.venv-py<version>,
# scripts/python-venv.sh); one missing from the machine is skipped, saying so.
# The default Python also runs that suite with pyrsistent's C extension
# blocked (PYRSISTENT_NO_C_EXTENSION, pyrsistent's own switch): the pure-Python
# vector that 3.13 gets (no pyrsistent 0.20 wheel there). The real-server
# suite stays on the default Python. Measured on 2 shared cores: ~2.5 min a
# run, ~2 min more to create a venv the first time.
PY_MATRIX ?= 3.12 3.13
UNIT_MARK := not server and not browser and not bench

.PHONY: demo replicas test test-streamlit test-matrix test-pythons bench lint venv system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalled whenever pyproject.toml (or the boot .pth) changes.
$(VENV)/.installed-runtime: pyproject.toml server_state-boot.pth | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@bash scripts/install-boot-pth.sh $(VENV)
	touch $@

$(VENV)/.installed-test: pyproject.toml server_state-boot.pth | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@bash scripts/install-boot-pth.sh $(VENV)
	touch $@ $(VENV)/.installed-runtime

# The package with the redis extra (redis, msgpack), for `make replicas`.
$(VENV)/.installed-redis: pyproject.toml server_state-boot.pth | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[redis]'
	@bash scripts/install-boot-pth.sh $(VENV)
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
	@$(MAKE) --no-print-directory test-pythons
	@$(MAKE) --no-print-directory test-matrix

test-pythons: $(VENV)/.installed-test
	@default="$$($(BIN)/python -c 'import platform; print(platform.python_version())')"; \
	ran="$$default (whole suite)"; \
	start=$$(date +%s); \
	PYRSISTENT_NO_C_EXTENSION=1 $(BIN)/python -m pytest -q -m "$(UNIT_MARK)" || exit 1; \
	echo "Python $$default without pyrsistent's C extension: $$(( $$(date +%s) - start )) s"; \
	ran="$$ran, $$default without pyrsistent's C extension"; \
	for v in $(PY_MATRIX); do \
		start=$$(date +%s); \
		bash scripts/python-venv.sh "$$v" ".venv-py$$v"; status=$$?; \
		if [ $$status -eq 3 ]; then echo "Python $$v: not on this machine, skipped"; continue; fi; \
		[ $$status -eq 0 ] || exit $$status; \
		.venv-py$$v/bin/python -m pytest -q -m "$(UNIT_MARK)" || exit 1; \
		echo "Python $$v: $$(( $$(date +%s) - start )) s"; \
		ran="$$ran, $$(.venv-py$$v/bin/python -c 'import platform; print(platform.python_version())')"; \
	done; \
	echo "Pythons that ran the unit and property suite: $$ran"

test-matrix:
	@set -f; for v in $(ST_MATRIX); do \
		start=$$(date +%s); \
		$(MAKE) --no-print-directory test-streamlit V="$$v" || exit 1; \
		echo "Streamlit $$v: $$(( $$(date +%s) - start )) s"; \
	done

test-streamlit: system-deps
	@test -n "$(V)" || { echo "usage: make test-streamlit V=1.50.* [ST_TESTS=all]" >&2; exit 2; }
	@PYTHON="$(PYTHON)" bash scripts/streamlit-venv.sh '$(V)' '$(ST_VENV)'
	$(ST_VENV)/bin/python -m pytest $(if $(filter all,$(ST_TESTS)),,-m "$(ST_MARK)")

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks.run --full

lint: $(VENV)/.installed-test
	$(BIN)/ruff check server_state tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .venv-st-* .venv-py* .pytest_cache .mypy_cache .ruff_cache
