# The two set-up commands of the README: `make demo` and `make test`.
# Each builds the virtualenv when it is missing (idempotently) and needs nothing else.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test bench lint venv system-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	@$(BIN)/python -m pip install -q -e '.[test,fast]'
	@touch $(STAMP)

venv: $(STAMP)

# Packages the differential and live tests use (real Open vSwitch, tshark, iproute2).
# Installed when missing and when we are root; tests that need them skip otherwise.
system-deps:
	@bash scripts/install-system-deps.sh

demo: venv
	@CTSWITCH_DB=$$(mktemp -d)/demo.db $(BIN)/ctswitch demo

test: venv system-deps
	@$(BIN)/python -m pytest tests

bench: venv
	@$(BIN)/python -m bench.run_all

lint: venv
	@$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
