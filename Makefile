# The two commands a fresh clone needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ehrlab run scenarios/ --mode virtual --report-dir reports

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n 3 --dist worksteal  # 3 on 2 cores: the real-time tests mostly wait, the third worker keeps the CPUs busy

bench: $(STAMP)  # every benchmark in one run, one table of ratios (a few minutes)
	$(BIN)/python benchmarks/run_all.py --all

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
