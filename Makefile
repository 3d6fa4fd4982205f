# Everything starts from a bare python3: the first target that needs it builds .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000

.PHONY: demo test ui ui-demo bench lint clean

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
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

# The UI on what `make demo` built: its own Dagster home, warehouse and landing folder under data/demo/.
ui-demo: $(STAMP)
	@test -f data/demo/demo.env || { echo "run make demo first: data/demo/demo.env is missing"; exit 2; }
	set -a && . ./data/demo/demo.env && set +a && $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.crm_ingest
	$(BIN)/python -m benchmarks.ga4_ingest
	$(BIN)/python -m benchmarks.identity_resolution --pairs 1
	$(BIN)/python -m benchmarks.egress --pairs 1
	$(BIN)/python -m benchmarks.records_sync --pairs 1
	$(BIN)/python -m benchmarks.full_pipeline $(if $(CDP_BENCH_POSTGRES_URL),--postgres $(CDP_BENCH_POSTGRES_URL))

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data .dagster .pytest_cache .ruff_cache
