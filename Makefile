# The README's commands. Every target sets up .venv first, so a fresh clone needs only Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data
export BENTOML_DO_NOT_TRACK := True

.PHONY: setup demo test lint bench bench-training bench-serving bench-drift quality clean

$(BIN)/pigeonhole: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,infra]'
	touch $@

setup: $(BIN)/pigeonhole ## create .venv with the project and its dev tools

demo: setup ## the main job on the embedded defaults (SQLite MLflow, files under .pigeonhole/)
	$(BIN)/pigeonhole demo

test: setup ## lint, type-check and the whole test suite
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

quality: setup ## our model vs the TF-IDF + LinearSVC reference on ../shared/data
	$(BIN)/python -m benchmarks.quality --data-dir $(SHARED_DATA)

bench-training: setup ## fit + log time and peak memory per ../shared/data file
	$(BIN)/python -m benchmarks.training --data-dir $(SHARED_DATA)

bench: bench-training bench-serving bench-drift

clean:
	rm -rf .pigeonhole .pytest_cache .mypy_cache .ruff_cache

bench-serving: setup ## this service vs mlflow models serve vs bare FastAPI vs in-process (needs wrk)
	$(BIN)/python -m benchmarks.serving

bench-drift: setup ## false alarms, detection on real drift, accuracy recovered, drift job cost
	$(BIN)/python -m benchmarks.drift --data-dir $(SHARED_DATA)
