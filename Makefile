# The two commands: `make run` and `make test`. Everything else is a helper of theirs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck bench install clean create-host admin system-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## make run: the server with the embedded defaults on http://127.0.0.1:8888
run: $(STAMP)
	@echo "Starting on http://127.0.0.1:$${PORT:-8888}/  (web page: http://127.0.0.1:$${PORT:-8888}/ ; stop with Ctrl-C)"
	$(BIN)/python server.py

## system-deps: Debian's Chromium (browser tests), nginx (the load-balancer config test) and
## redis-server with redis-cli (the Sentinel and Cluster topology tests), by apt, never a browser download
system-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium fonts-noto-color-emoji"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null 2>&1 || missing="$$missing redis-tools"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "Missing: $$missing. Run 'sudo apt-get install -y $$missing' (browser, nginx and Redis topology tests need them)" >&2; exit 1; fi; fi

## make test: the whole suite against its own Redis and MongoDB-wire servers, and a real Chromium
test: $(STAMP) system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: treating as failure" >&2; exit 1; fi; \
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/lint-imports \
		|| { echo "lint or type check failed" >&2; [ $$status -ne 0 ] || status=1; }; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## make bench: the fan-out benchmark (see bench/README.md)
bench: $(STAMP)
	$(BIN)/python -m bench.fanout $(BENCH_ARGS)

## make create-host EMAIL=... : create a host account from the command line
create-host: $(STAMP)
	$(BIN)/python -m handlers.cli create-host --email "$(EMAIL)"

## make admin ARGS="list-hosts" : any admin command (make admin ARGS=--help lists them); works while
## the server runs
admin: $(STAMP)
	$(BIN)/python -m handlers.cli $(ARGS)

clean:
	rm -rf $(VENV) var/test-artifacts
