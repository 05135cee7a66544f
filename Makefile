# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.takt-installed

.PHONY: demo test tools lint bench schemas examples image image-tools image-test clean

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
	$(PY) bench/bench_validate.py
	$(PY) bench/bench_digest.py 512
	$(PY) bench/bench_agent.py
	$(PY) bench/bench_runner.py

schemas: $(STAMP)
	$(VENV)/bin/takt schema --out schemas

examples: $(STAMP)
	$(PY) examples/make_models.py

# The takt-runner OCI image (targets/it_server/image/): as root, with debootstrap; never part of `make test`.
IMAGE_OUT ?= build/image
image-tools:
	@command -v debootstrap >/dev/null && command -v umoci >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap umoci; }

image: $(STAMP) image-tools
	PYTHON=$(abspath $(PY)) bash targets/it_server/image/build.sh $(IMAGE_OUT)
	@cat $(IMAGE_OUT)/reference

image-test: $(STAMP) image-tools
	TAKT_IMAGE_TEST=1 $(PY) -m pytest -x -q -s tests/test_image.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
