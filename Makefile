# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.takt-installed

.PHONY: demo test tools lint bench schemas examples clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	@bash examples/demo.sh $(VENV)

tools:
	@bash .ci/tools.sh

test: $(STAMP) tools
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) bench/run $(BENCH_ARGS)

schemas: $(STAMP)
	$(VENV)/bin/takt schema --out schemas

examples: $(STAMP)
	$(PY) examples/make_models.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
