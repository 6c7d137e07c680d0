PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck unit demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/python -m tests.demo

bench: $(STAMP)
	$(BIN)/python -m bench.tick

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache

# The code package FC runs: dist/code/ and dist/schedulerx-alert.zip (scripts/build_package.py).
# PYTHON_VERSION defaults to the runtime in s.yaml; CONFIG is shipped as /code/config.yaml;
# BYTECODE: auto (compile .pyc when a pythonX.Y of the target version is found), none, or a path.
PYTHON_VERSION ?= $(shell $(PY) scripts/build_package.py --print-python-version)
CONFIG ?= config.yaml
BYTECODE ?= auto

.PHONY: package
package: $(STAMP)
	$(BIN)/python scripts/build_package.py --python-version $(PYTHON_VERSION) --config $(CONFIG) \
		--bytecode $(BYTECODE)
