PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock test test-deep lint typecheck unit demo bench clean

install: $(STAMP)

# The venv holds exactly the locked versions, each checked against its hash, so the
# tests run what `make package` ships (requirements/dev.txt, exported from uv.lock).
$(STAMP): pyproject.toml requirements/dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# After changing dependencies in pyproject.toml: resolve them again from PyPI into
# uv.lock, export requirements/dev.txt and requirements/package.txt, reinstall.
# Commit all three; tests/test_lock.py fails while they disagree with pyproject.toml.
lock: $(STAMP)
	UV_PYTHON_DOWNLOADS=never UV_PYTHON=$(BIN)/python $(BIN)/python -m uv lock
	$(BIN)/python scripts/build_package.py --export-requirements
	$(MAKE) install

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	PYTHONPATH=src $(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# One worker per core; a test file stays on one worker, so its module fixtures (a built
# package, a deployed stack) are made once.
PYTEST := $(BIN)/pytest -n auto --dist loadfile

unit: $(STAMP)
	$(PYTEST)

# The same suite with many more examples per property test (tests/conftest.py's profiles).
test-deep: lint typecheck $(STAMP)
	HYPOTHESIS_PROFILE=deep $(PYTEST)

# mypy runs beside pytest: the suite waits on loopback servers and subprocesses often
# enough that a second job fits on a 2-core machine; each job's output is printed whole.
test: lint
	$(MAKE) --no-print-directory -j2 --output-sync=target typecheck unit

demo: $(STAMP)
	$(BIN)/python -m tests.demo

# Your own config (CONFIG, default config.yaml) against loopback SchedulerX, OSS, DingTalk
# and FC, until Ctrl-C; drive it from another shell (docs/sandbox.md, tests/sandbox.py).
.PHONY: sandbox
sandbox: $(STAMP)
	$(BIN)/python -m tests.sandbox --config $(CONFIG)

# Cold start (import and first tick, fresh processes) beside `import requests`; then ticks.
bench: $(STAMP)
	$(BIN)/python -m bench.coldstart
	$(BIN)/python -m bench.tick
	$(BIN)/python -m bench.moving  # about an hour on a quiet machine: 14 rows of 0.5 h (the outage 55 min)

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache tests/deploy/node_modules

# The code package FC runs: dist/code/ and dist/schedulerx-alert.zip (scripts/build_package.py).
# PYTHON_VERSION defaults to the runtime in s.yaml; CONFIG is checked and shipped as
# /code/config.json (its ${VAR}s must be set for the check; they stay references in the file);
# BYTECODE: auto (compile .pyc when a pythonX.Y of the target version is found), none, or a path.
PYTHON_VERSION ?= $(shell $(PY) scripts/build_package.py --print-python-version)
CONFIG ?= config.yaml
BYTECODE ?= auto

.PHONY: package
package: $(STAMP)
	$(BIN)/python scripts/build_package.py --python-version $(PYTHON_VERSION) --config $(CONFIG) \
		--bytecode $(BYTECODE)

# Serverless Devs' own s.yaml parser for tests/test_s_yaml_resolved.py: the version pinned in
# tests/deploy/package-lock.json, installed into tests/deploy/node_modules/ (git ignores it).
# node and npm come from Debian's packages when they are missing and we may install them.
DEPLOY_TOOLS := tests/deploy/node_modules/.installed

.PHONY: deploy-tools
deploy-tools: $(DEPLOY_TOOLS)

$(DEPLOY_TOOLS): tests/deploy/package.json tests/deploy/package-lock.json
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; \
		else \
			echo "make deploy-tools: node and npm are missing; install them first," \
				"e.g. sudo apt-get install nodejs npm" >&2; \
			exit 1; \
		fi; \
	fi
	npm ci --prefix tests/deploy --no-audit --no-fund --loglevel=error
	touch $@

unit: $(DEPLOY_TOOLS)

# What `schedulerx-alert render --preview out.png` needs (tests/test_render_cmd.py, make previews):
# Debian's headless Chromium and CJK fonts, installed when missing and we may install them;
# otherwise the target says what to install and stops, as deploy-tools does (the PNG test
# fails without them rather than skip). `render --preview out.html` needs neither.
.PHONY: preview-tools previews
preview-tools:
	@missing=""; \
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
		|| missing="$$missing chromium"; \
	fc-list 2>/dev/null | grep -q "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends $$missing; \
	else \
		echo "make preview-tools: missing$$missing; PNG previews need them," \
			"e.g. sudo apt-get install$$missing" >&2; \
		exit 1; \
	fi

# The pictures in README.md: each default message kind in zh-CN, drawn by `render --preview`.
# Every kind `render` knows (ops/samples.py KINDS), so a new kind gets its picture.
PREVIEW_KINDS = $(shell $(BIN)/python -c 'from schedulerx_alert.cli.samples import KINDS; print(*KINDS)')
previews: $(STAMP) preview-tools
	mkdir -p docs/previews
	for kind in $(PREVIEW_KINDS); do \
		$(BIN)/schedulerx-alert render --kind $$kind --lang zh-CN \
			--preview docs/previews/$$kind.png >/dev/null || exit 1; \
	done

unit: preview-tools
