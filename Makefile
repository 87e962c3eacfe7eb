# Two commands: `make demo` and `make test`. Both set up .venv from the pinned requirements.txt first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The demo and the tests use only local data and checkpoints: never wait on the hub.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-slow test-all lint setup system-deps clean-runs paper submission

demo: setup
	$(PY) scripts/finetune.py --config configs/demo.yaml
	$(PY) scripts/compare.py --dataset fortunes

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

lint: setup
	$(VENV)/bin/ruff check hf_project scripts tests

setup: $(VENV)/.installed system-deps

# paper/paper.pdf from the complete runs (pdflatex + bibtex; system-deps installs them), then the course zip.
paper: setup
	$(PY) scripts/build_paper.py

submission: paper
	$(PY) scripts/package_submission.py

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==26.3
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

system-deps:  # fortunes (the builtin dataset), LaTeX + poppler-utils (the paper)
	@bash scripts/setup_system.sh

clean-runs:
	rm -rf runs/*/ weights/*/
