# Quick start (see README.md):
#   make serve   set everything up, then run the HTTP server on 127.0.0.1:8765
#   make test    set everything up, then run the whole test suite
# `make setup MODELS="esrgan-slim open-nsfw"` installs a subset of the models.

MODELS ?=
CARGO ?= cargo

.PHONY: setup test-tools build install serve test bench

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
	$(CARGO) test --release --locked --workspace

bench: setup
	benches/run.sh
