# Everything starts from a bare python3: the first target that needs it builds .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test ui bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cdp-assets demo

test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadgroup

ui: $(STAMP)
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: $(STAMP)
	$(BIN)/python -m benchmarks.crm_ingest
	$(BIN)/python -m benchmarks.ga4_ingest
	$(BIN)/python -m benchmarks.identity_resolution --pairs 1
	$(BIN)/python -m benchmarks.egress --pairs 1
	$(BIN)/python -m benchmarks.full_pipeline $(if $(CDP_BENCH_POSTGRES_URL),--postgres $(CDP_BENCH_POSTGRES_URL))

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data .dagster .pytest_cache .ruff_cache
