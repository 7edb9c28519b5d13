# Every target that needs Python builds the virtualenv first; every target that needs a cluster
# obtains the control-plane binaries first (hack/tools.sh: environment, cache, else a Go build).
# Debian's /usr/bin/python3.11 (built with PGO and LTO, libpython linked into the executable) runs the
# operator's reconciles ~1.2x faster than a pyenv build (docs/performance.md): used when it is there and
# can make a venv (python3.11-venv); else whichever python3.11 is on PATH. `make PYTHON=...` overrides.
DEBIAN_PYTHON := $(shell /usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null && echo /usr/bin/python3.11)
PYTHON ?= $(or $(DEBIAN_PYTHON),python3.11)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv tools crds chart catalog lint fmt test test-unit test-integration cluster-up cluster-down demo bench clean

help:
	@echo "make demo          local control plane + operator + catalog + examples"
	@echo "make test          lint, unit and integration tests (builds or finds the binaries)"
	@echo "make test-unit     fast tests, no cluster"
	@echo "make cluster-up    start the local cluster (kubeconfig: .work/modelcatalog.kubeconfig)"
	@echo "make cluster-down  stop it"
	@echo "make crds          regenerate crds/ (and the chart's copy) from the pydantic models"
	@echo "make chart         regenerate the chart's generated files (CRDs, RBAC, default catalog, policy/)"
	@echo "make catalog       normalise catalog/ (derived labels, GPU memory, prices.yaml)"
	@echo "make bench         benchmarks (prints figures)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

tools:
	bash hack/tools.sh

crds: venv
	$(BIN)/python -m modelcatalog.api.crdgen
	$(BIN)/python -m modelcatalog.chartgen

chart: venv
	$(BIN)/python -m modelcatalog.chartgen

catalog: venv
	$(BIN)/modelcatalog catalog normalize
	$(BIN)/python -m modelcatalog.chartgen

lint: venv
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy

fmt: venv
	$(BIN)/ruff check --fix operator tests bench
	$(BIN)/ruff format operator tests bench

test: lint tools
	$(BIN)/pytest tests

test-unit: venv
	$(BIN)/pytest tests/unit

test-integration: venv tools
	$(BIN)/pytest tests/integration

cluster-up: venv tools
	$(BIN)/modelcatalog cluster up

cluster-down: venv
	$(BIN)/modelcatalog cluster down

demo: venv tools
	$(BIN)/modelcatalog demo

bench: venv tools
	$(BIN)/python -m bench

clean: cluster-down
	rm -rf .work
