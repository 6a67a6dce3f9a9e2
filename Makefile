# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps .venv itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help venv test lint typecheck unit integration demo emulator bench bench-quick clean

help:
	@echo "make demo   - run the bridge end to end on an embedded broker and the Hume emulator"
	@echo "make test   - lint, type-check and run every test (installs what it needs)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check bridge tests
	$(VENV)/bin/ruff format --check bridge tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

test: lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider tests

demo: $(STAMP)
	$(VENV)/bin/hume-bridge demo

bench: $(STAMP)
	$(VENV)/bin/hume-bridge bench --json bench-results.json

bench-quick: $(STAMP)
	$(VENV)/bin/hume-bridge bench --quick --json bench-results.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# Offline validation of the Dockerfile and deploy/ (kustomize, kubernetes-validate, CRD schemas, checkov,
# hadolint, promtool, the Grafana dashboard schema, metric names). Installs its tools on the first run:
# .deploy-tools/, deploy/tools/node_modules and, as root on Debian, node/npm and python3-venv via apt-get.
.PHONY: deploy-check
deploy-check: $(STAMP)
	PY=$(PY) bash scripts/deploy_check.sh

# The fault suite: scenarios against real processes (broker, emulator, bridges, fault proxies), one
# accounting check each; a table on stdout and chaos-results.json. See docs/RELIABILITY.md.
.PHONY: chaos
chaos: $(STAMP)
	$(VENV)/bin/hume-bridge chaos --json chaos-results.json
