# reportgen — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= examples/clothing-mini
OUT ?= out/$(notdir $(patsubst %/,%,$(DATA)))
ARGS ?=

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

lint: install ## Check style with ruff.
	$(BIN)/ruff check reportgen tests benchmarks

benchmark: install ## Print images/s of the pipeline's stages on this machine.
	$(BIN)/python benchmarks/throughput.py

clean: ## Remove the virtual environment and outputs.
	rm -rf $(VENV) out
