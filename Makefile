# Two commands matter: `make demo` and `make test`. Everything else is what they are made of.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck format redis-server chromium screenshots faults bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Conveyor needs Python 3.11+"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## demo: install into .venv and run real jobs on the embedded SQLite store (no Redis needed)
demo: $(STAMP)
	$(VENV)/bin/conveyor demo

## test: lint, type-check, then the whole suite against memory, SQLite and a private redis-server
test: $(STAMP) redis-server chromium lint typecheck
	$(PY) -m pytest

## faults: the heaviest fault and soak cases
faults: $(STAMP) redis-server
	$(PY) -m pytest -m faults --run-faults -s; status=$$?; $(PY) tests/faults/guarantees.py; exit $$status

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests bench
	$(VENV)/bin/ruff format src tests bench

## bench: Conveyor beside its peers on a private redis-server; writes docs/benchmarks.md
## (about 25 minutes; BENCH_ARGS=--quick for a smoke run, BENCH_ARGS="--systems conveyor,huey")
bench: $(STAMP) redis-server
	$(PY) -m bench $(BENCH_ARGS)

## bench-cache: conveyor.cache beside cashews and aiocache on a private redis-server; writes
## docs/cache-benchmarks.md (about 4 minutes; BENCH_ARGS=--quick for a smoke run)
.PHONY: bench-cache
bench-cache: $(STAMP) redis-server
	$(PY) -m bench.cache $(BENCH_ARGS)

## screenshots: every dashboard page, light and dark, into docs/screenshots/
screenshots: $(STAMP) redis-server chromium
	CONVEYOR_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/dashboard -k screenshots -q

# The dashboard's browser tests drive Debian's chromium through Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "chromium missing: installing Debian's package"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	}

# The tests start their own private redis-server on a free port; this makes sure the binary
# exists (Debian's package) on a bare machine.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "redis-server missing: installing Debian's package"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	}

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis conveyor.db* conveyor-demo.db*
	rm -rf bench/.venv-peers bench/results
