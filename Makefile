# Two commands on a fresh clone: `make run` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test lint messages screenshots bench bench-quick clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit("vodwatch needs python3 >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# On an empty database: the demo tenant first (made-up viewing and a dashboard login), then
# serve creates the first tenant of your own beside it and prints its secret (the demo tenant
# does not count as one). Later runs skip both. serve itself never adds demo data.
run: $(STAMP)
	$(BIN)/vodwatch demo --if-empty
	$(BIN)/vodwatch serve --first-tenant sandbox

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts $(wildcard bench)
	$(BIN)/ruff format --check src tests scripts $(wildcard bench)
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# The dashboard's translations: re-extract the templates' texts, merge them into each catalog
# (then translate the new or fuzzy entries of zh_Hans), compile the .mo files (committed).
LOCALE := src/vodwatch/dashboard/locale
messages: $(STAMP)
	$(BIN)/pybabel extract -F src/vodwatch/dashboard/babel.cfg --project vodwatch \
		-o $(LOCALE)/messages.pot src/vodwatch/dashboard
	$(BIN)/pybabel update --ignore-obsolete -i $(LOCALE)/messages.pot -d $(LOCALE)
	$(BIN)/pybabel compile --statistics -d $(LOCALE)

# The README's dashboard pictures (docs/screenshots), from the demo data in headless Chromium
# (Debian's chromium: apt-get install chromium fonts-noto-cjk).
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py --out docs/screenshots

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

# The benchmark suite (about 30 minutes): bench/results/latest.{json,md} and latency.png.
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--backends sqlite --only query".
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# A smoke run of every part in about a minute: bench/results/quick.{json,md}.
bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
