# reportgen — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= examples/clothing-mini
OUT ?= out/$(notdir $(patsubst %/,%,$(DATA)))
ARGS ?=
# make benchmark's short default (about 10 min on 2 cores); the full table: SCALE_ARGS= (see README)
SCALE_ARGS ?= --sizes 500,1000,2000 --classes 3,6,12 --class-images 500

.DEFAULT_GOAL := help
.PHONY: help install report test test-fast lint benchmark clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install reportgen with its pinned dependencies.

report: install ## Audit DATA (default: the bundled example) into OUT: HTML, PDF, JSON. ARGS adds options.
	$(BIN)/reportgen run $(DATA) --out $(OUT) $(ARGS)
	@echo "open $(OUT)/report.html or $(OUT)/report.pdf"

test: install ## Run the whole test suite (real-photo tests skip when ../shared is absent).
	$(BIN)/pytest

test-fast: install ## Run the tests without the end-to-end ones.
	$(BIN)/pytest -m "not e2e"

lint: install ## Check style with ruff and the layers (import-linter contracts in pyproject.toml).
	$(BIN)/ruff check reportgen tests benchmarks
	$(BIN)/lint-imports

benchmark: install ## Stage seconds, peak memory and growth exponents vs images and classes (SCALE_ARGS); stage img/s.
	$(BIN)/python benchmarks/scale.py $(SCALE_ARGS)
	$(BIN)/python benchmarks/throughput.py

clean: ## Remove the virtual environment and outputs.
	rm -rf $(VENV) out
