# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench clean

# constraints.txt: the layer's exact versions, so the tests run on what `sam build` deploys.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The service tests run on the in-memory stack; the second run puts the same tests on moto and the emulator over
# HTTP, so a fake that drifts from AWS fails here even where tests/contract has no case for it.
test: lint
	$(BIN)/pytest
	$(BIN)/pytest tests/unit/services -m "not integration" --stack=moto

demo: install
	$(BIN)/videobatch demo

bench: install
	$(BIN)/python benchmarks/client_import.py
	$(BIN)/python benchmarks/results_stream.py
	$(BIN)/python benchmarks/samples.py
	$(BIN)/python benchmarks/handler_imports.py
	$(BIN)/python benchmarks/calls_per_video.py
	$(BIN)/python benchmarks/flush_scale.py
	$(BIN)/python benchmarks/multipart_upload.py
	$(BIN)/python benchmarks/simulation_speed.py
	$(BIN)/python benchmarks/cost_per_video.py
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
