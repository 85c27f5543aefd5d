# Two commands for a fresh machine: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
# llama-cpp-python compiles from source the first time (~5 min on 2 cores); pip caches the wheel.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[local,llamacpp,bedrock,quality,web,postgres,ray,dev]'
	touch $@

install: $(STAMP)  ## install Tryouts with every extra into .venv

demo: install  ## compare the real SmolLM2-135M-Instruct across llama.cpp, its server and transformers, offline
	HF_HUB_OFFLINE=1 $(BIN)/tryouts demo

# Debian's Chromium drives the browser tests (Playwright never downloads a browser here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The browser tests need Debian's chromium at $(CHROMIUM): sudo apt-get install chromium"; exit 1; \
	fi

# Debian's PostgreSQL 15: tests/test_store_postgres.py starts a throwaway server from these binaries.
INITDB := /usr/lib/postgresql/15/bin/initdb
$(INITDB):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
		test -x $(INITDB) || { echo "apt-get installed no $(INITDB) (another PostgreSQL major version?)"; exit 1; }; \
	else \
		echo "The PostgreSQL tests need Debian's PostgreSQL 15 at $(INITDB): sudo apt-get install postgresql"; exit 1; \
	fi

# Debian's bubblewrap isolates model-written code (src/tryouts/scoring/sandbox.py); code scoring refuses without it.
BWRAP := /usr/bin/bwrap
$(BWRAP):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; \
	else \
		echo "The code sandbox needs Debian's bubblewrap at $(BWRAP): sudo apt-get install bubblewrap"; exit 1; \
	fi

test: install $(CHROMIUM) $(INITDB) $(BWRAP)  ## lint, check the generated docs, and run every test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python docs/gen_cli.py --check
	$(BIN)/python docs/gen_schema.py --check
	$(BIN)/python docs/gen_json.py --check
	$(BIN)/python docs/gen_options.py --check
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

docs: install  ## regenerate docs/cli.md from --help
	$(BIN)/python docs/gen_cli.py
	$(BIN)/python docs/gen_json.py
	$(BIN)/python docs/gen_options.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
