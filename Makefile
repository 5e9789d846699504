# Two commands: `make demo` (train + evaluate on the bundled sample) and `make test`.
# Both create .venv and install the package first; torch is installed on its own line, from
# TORCH_INDEX when given: TORCH_INDEX=https://download.pytorch.org/whl/cpu gets the CPU wheel
# anywhere, .../whl/cu128 a CUDA build. Left empty (CI), pip uses its configured index: on this
# machine that serves the CPU wheel, elsewhere PyPI's default torch is a CUDA build (GBs).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1

.PHONY: setup demo test test-all bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,lexicon]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) examples/run_ner.py examples/configs/sample_rocling.json

test: setup
	$(PY) -m pytest -q -m "not slow and not gpu"

test-all: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
