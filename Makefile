# Two commands matter: `make demo` and `make test`. Both build what they need from a clean checkout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .venv-tools
# The generator is pinned: a different protoc may serialise the descriptor differently.
GRPCIO_TOOLS := grpcio-tools==1.85.1
PYTEST_ARGS ?=

.PHONY: help demo test lint typecheck pytest protos check-protos bench bench-quick clean

help:
	@echo "make demo    set up .venv and run the main job on the embedded engine"
	@echo "make test    set up .venv, then lint, type check and run the whole suite"
	@echo "make protos  regenerate src/pinecone_rag/_proto from protos/ (pinned $(GRPCIO_TOOLS))"
	@echo "make bench   run the benchmarks in bench/ (full size)"
	@echo "make compat  run every official SDK line, LangChain and LlamaIndex against the engine"
	@echo "make stress  the long profiles: 120k fuzz inputs, 50 kill -9 cycles"

# torch is pinned to the CPU build this machine's index serves; unpinned, sentence-transformers would pull
# a multi-GB CUDA build.
TORCH := torch==2.13.0
PACKAGES := -e '.[dev,models]' -e 'integrations/langchain[langgraph]' -e integrations/llama_index

$(BIN)/.installed: pyproject.toml integrations/langchain/pyproject.toml integrations/llama_index/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet '$(TORCH)'
	$(BIN)/python -m pip install --quiet '$(TORCH)' $(PACKAGES)
	touch $@

$(TOOLS)/.installed:
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet '$(GRPCIO_TOOLS)'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/pinecone-rag demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed $(TOOLS)/.installed
	PINECONE_RAG_PROTOC_PYTHON=$(abspath $(TOOLS)/bin/python) $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

protos: $(TOOLS)/.installed
	$(TOOLS)/bin/python scripts/gen_protos.py

BENCHES := codec sdk_vs_engine client_upsert client_ceiling client_query engine adapters load allocator

bench: $(BIN)/.installed
	for name in $(BENCHES); do $(BIN)/python bench/$$name.py --write bench/RESULTS.md || exit 1; done

bench-quick: $(BIN)/.installed
	for name in $(BENCHES); do $(BIN)/python bench/$$name.py --quick || exit 1; done

.PHONY: compat
# Each SDK line gets its own venv under .venv-compat/; the table goes into bench/RESULTS.md.
compat: $(BIN)/.installed
	$(BIN)/python scripts/compat/run.py --write bench/RESULTS.md

.PHONY: stress
# The long profiles: >= 100k fuzz inputs (6 fuzz tests x 20k; requests time out on their own, hence no
# per-test timeout) and 50 kill -9 cycles. bench/stress.py runs pytest on tests/fuzz and
# tests/integration/test_durability.py and test_kill_midstream.py with them and writes the figures to
# bench/RESULTS.md.
STRESS_FUZZ_EXAMPLES ?= 20000
STRESS_CYCLES ?= 50
stress: $(BIN)/.installed
	$(BIN)/python bench/stress.py --examples $(STRESS_FUZZ_EXAMPLES) --cycles $(STRESS_CYCLES) \
		--write bench/RESULTS.md -- $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
