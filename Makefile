# Two commands: `make study` (install + dvc repro) and `make test` (install + test suite).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Stages run `python ...`: put the project's venv first on PATH for dvc and its children.
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: study test install lint clean-venv

study: $(VENV)/.installed
	$(RUN) dvc repro

test: $(VENV)/.installed-dev
	$(RUN) HF_HUB_OFFLINE=1 python -m pytest -q

lint: $(VENV)/.installed-dev
	$(RUN) ruff check src stages tests

install: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

clean-venv:
	rm -rf $(VENV)
