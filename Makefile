# The two set-up commands of the README: `make demo` and `make test`.
# Each builds the virtualenv when it is missing (idempotently) and needs nothing else.
# The interpreter the virtualenv is made from: the distribution's /usr/bin/python3 when it is 3.11
# or later and can make a virtualenv and build extensions (Debian's is built with PGO and LTO and
# linked statically: the slow path runs faster on it than on a plain ./configure build such as
# pyenv's, commit 1ffc698 and docs/performance.md section 12), else the first python3 on PATH.
# `make PY=...` overrides; an existing .venv is kept whatever it was made from (`make clean` first).
PICK_PY := $(shell for p in /usr/bin/python3 python3; do \
  $$p -c 'import os, sys, sysconfig, ensurepip, venv; \
    sys.exit(sys.version_info < (3, 11) or not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  >/dev/null 2>&1 && { echo $$p; break; }; done)
PY ?= $(or $(PICK_PY),python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test bench bench-deps lint venv native system-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	@$(BIN)/python -m pip install -q -e '.[test,fast]'
	@touch $(STAMP)

venv: $(STAMP)

# The compiled core: the per-packet modules compiled by Cython from their unchanged source
# (src/ctswitch/_native.py says which and when they load). Incremental: only changed modules are
# rebuilt; without a compiler everything runs as Python, and it says so.
native: venv
	@$(BIN)/python scripts/build_native.py

# Packages the differential and live tests use (real Open vSwitch, tshark, iproute2).
# Installed when missing and when we are root; tests that need them skip otherwise.
system-deps:
	@bash scripts/install-system-deps.sh

demo: native
	@CTSWITCH_DB=$$(mktemp -d)/demo.db $(BIN)/ctswitch demo

test: native system-deps
	@$(BIN)/python -m pytest tests

# Real OVS 3.1 with DPDK, which bench_replay runs beside ctswitch (bench/ovs_dpdk.py). Installed when
# missing and when we are root; it does not take over the ovs-vswitchd alternative (the tests keep the
# plain binary) and starts nothing. Without it bench_replay compares with recorded figures and says so.
DPDK_VSWITCHD := /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
bench-deps:
	@if [ ! -x $(DPDK_VSWITCHD) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing system package: openvswitch-switch-dpdk" >&2; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -qq openvswitch-switch-dpdk || \
	    { apt-get update -qq && apt-get install -y -qq openvswitch-switch-dpdk; }; } >/tmp/ctswitch-apt-dpdk.log 2>&1 \
	  || echo "warning: could not install openvswitch-switch-dpdk (see /tmp/ctswitch-apt-dpdk.log); bench_replay uses the recorded OVS figures" >&2; \
	fi

bench: native bench-deps
	@$(BIN)/python -m bench.run_all

lint: venv
	@$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info src/ctswitch/_compiled
