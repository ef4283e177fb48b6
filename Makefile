# Quick start (see README.md):
#   make serve   set everything up, then run the HTTP server on 127.0.0.1:8765
#   make test    set everything up, then run the whole test suite
# `make setup MODELS="esrgan-slim open-nsfw"` installs a subset of the models.

MODELS ?=
# Seconds per fuzz target in `make test` (scripts/fuzz.sh; docs/src/fuzzing.md has the long run).
FUZZ_SECONDS ?= 60
# Targets fuzzed at once (all three: a minute of wall time each, the two cores shared).
FUZZ_JOBS ?= 3
CARGO ?= cargo

.PHONY: setup test-tools build install serve test check-structure fuzz-smoke bench docs

setup:
	scripts/setup.sh $(MODELS)

test-tools:
	scripts/test-tools.sh

build:
	$(CARGO) build --release --locked -p upres-cli

install:
	scripts/install.sh $(MODELS)

serve: setup build
	target/release/upres serve

test: setup test-tools
	$(MAKE) check-structure
	$(CARGO) test --release --locked --workspace
	$(MAKE) fuzz-smoke

# No module cycles, no source file outside tests over 450 lines (installs cargo-cycles, pinned).
check-structure:
	scripts/check-structure.sh

fuzz-smoke:
	FUZZ_JOBS=$(FUZZ_JOBS) scripts/fuzz.sh $(FUZZ_SECONDS)

bench: setup
	benches/run.sh

docs:
	scripts/docs.sh
