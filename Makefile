# Every target installs what it needs into ./.venv first, so a fresh clone works.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DATA ?= ./data

.PHONY: run test bench bench-engine bench-listing lint clean venv debian-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

debian-deps:
	./scripts/install-debian-deps.sh

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ostor server $(DATA) --address 127.0.0.1:9000

test: $(TEST_STAMP) debian-deps
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -ra tests

bench: $(TEST_STAMP) debian-deps
	$(PY) benchmarks/gateway_bench.py
	$(PY) benchmarks/multipart_bench.py

bench-listing: $(TEST_STAMP)
	$(PY) benchmarks/listing_bench.py

bench-engine: $(STAMP)
	$(PY) benchmarks/engine_bench.py

lint: $(TEST_STAMP)
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info
