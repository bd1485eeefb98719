# Every target installs what it needs first, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ANCHORS := .venv-anchors
# Feast pins packages MLflow and Evidently need otherwise (tenacity), so it has an environment of its own.
FEAST := .venv-anchors-features
PIPELINE_ANCHORS := .venv-anchors-pipelines
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint format typecheck bench anchors anchors-features anchors-pipelines clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The closed loop on real processes: loopml server + quickstart.py (training on 2011) + a loopml serve replica,
# 2012 replayed as traffic; outputs in ./loopml-demo (docs/demo.md).
demo: $(STAMP)
	$(BIN)/python examples/quickstart/loop.py

# Two test processes share the machine's cores: each runs scikit-learn's OpenMP code on one thread. With a
# team of threads per process, OpenMP's spin-waiting threads make an oversubscribed fit 10-20x slower.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

$(ANCHORS)/.installed: benchmarks/anchors-requirements.txt
	$(PYTHON) -m venv $(ANCHORS)
	$(ANCHORS)/bin/python -m pip install --quiet --upgrade pip
	$(ANCHORS)/bin/python -m pip install --quiet -r benchmarks/anchors-requirements.txt
	touch $(ANCHORS)/.installed

anchors: $(ANCHORS)/.installed

$(FEAST)/.installed: benchmarks/anchors-features-requirements.txt
	$(PYTHON) -m venv $(FEAST)
	$(FEAST)/bin/python -m pip install --quiet --upgrade pip
	$(FEAST)/bin/python -m pip install --quiet -r benchmarks/anchors-features-requirements.txt
	touch $(FEAST)/.installed

anchors-features: $(FEAST)/.installed

# Prefect 3 pins FastAPI and websockets below what MLflow needs, so the pipeline anchors get a venv of their own.
$(PIPELINE_ANCHORS)/.installed: benchmarks/anchors-pipelines-requirements.txt
	$(PYTHON) -m venv $(PIPELINE_ANCHORS)
	$(PIPELINE_ANCHORS)/bin/python -m pip install --quiet --upgrade pip
	$(PIPELINE_ANCHORS)/bin/python -m pip install --quiet -r benchmarks/anchors-pipelines-requirements.txt
	touch $(PIPELINE_ANCHORS)/.installed

anchors-pipelines: $(PIPELINE_ANCHORS)/.installed

# Every benchmark, loopml and its anchor side by side (serving needs Debian's `wrk`: apt-get install wrk).
bench: $(STAMP) $(ANCHORS)/.installed $(FEAST)/.installed $(PIPELINE_ANCHORS)/.installed
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/registry.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/monitoring.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/pipelines.py

clean:
	rm -rf $(VENV) $(ANCHORS) $(FEAST) $(PIPELINE_ANCHORS) loopml-data benchmarks/results .pytest_cache .mypy_cache .ruff_cache
