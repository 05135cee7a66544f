# The two commands of the README: `make demo` and `make test`.
# Both install the exact versions and hashes of requirements.lock (`make lock` writes it from the
# ranges in pyproject.toml); `make test-latest` runs the suite under the newest versions those
# ranges allow, i.e. what `pip install takt` gets today.
# Python keeps compiled bytecode (__pycache__) as it does by default: where the environment sets
# PYTHONDONTWRITEBYTECODE (some CI images and sandboxes do) and the venv holds no .pyc (uv installs
# none), every process of the suite, the demo and the benchmark would compile each module it imports
# again, 1-2 s of CPU per process start.
unexport PYTHONDONTWRITEBYTECODE
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.takt-installed
LOCK   := requirements.lock
LATEST ?= .venv-latest
LOCKER := .venv-lock
# uv installs requirements.lock (seconds from its cache, where pip took minutes); uv itself comes by pip
# from its own hashed lock (`make uv-lock` writes it for UV_VERSION)
UV_VERSION ?= 0.13.9
UV_LOCK := requirements-uv.lock
UV     := $(VENV)/bin/uv
# pip reports errors only (not a warning for every index a machine's pip.conf names)
PIP    := -m pip install -qq --disable-pip-version-check
# --maxschedchunk 1: xdist tops each worker up one test at a time (two queued), in collection order, which
# tests/conftest.py starts with the longest tests (LONG_TESTS): none starts last and makes the tail
PYTEST := -m pytest -n 2 --maxschedchunk 1 -q

.PHONY: demo test test-fast test-latest lock uv-lock tools lint typecheck bench schemas examples image image-tools image-test mutation mutation-lock clean

# uv reads no pip.conf: it installs from PyPI unless UV_DEFAULT_INDEX (or UV_INDEX_URL) names a mirror. First from
# uv's cache alone (--offline): the hashes pin every file's bytes, so when the cache holds them all the index
# need not be asked again (seconds); else from the index, trusting the system's certificate store as pip does
# (a proxy's own root, e.g., is there and not in uv's bundled roots).
$(STAMP): pyproject.toml $(LOCK) $(UV_LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@if [ -e $(STAMP) ] && [ $(LOCK) -nt $(STAMP) ]; then echo "$(LOCK) changed: a new $(VENV)"; rm -rf $(VENV); fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) $(PIP) --require-hashes -r $(UV_LOCK)
	$(UV) pip install -q --python $(PY) --require-hashes --offline -r $(LOCK) 2>/dev/null \
	  || $(UV) pip install -q --python $(PY) --require-hashes --system-certs -r $(LOCK)
	$(UV) pip install -q --python $(PY) --no-deps --no-build-isolation -e .
	@$(UV) pip check -q --python $(PY) >/dev/null 2>&1 || { $(UV) pip check --python $(PY); \
	  echo "$(LOCK) does not satisfy pyproject.toml: run 'make lock' and commit $(LOCK)" >&2; exit 1; }
	@touch $(STAMP)

# Exact versions and hashes (Python 3.11, Linux x86_64, manylinux_2_28) of the dependencies, the
# test extra, the build backend and pip. Pins already in the file are kept and new dependencies
# added; `make lock LOCK_ARGS=--upgrade` moves every pin to the newest allowed version.
lock:
	@test -x $(LOCKER)/bin/uv || { $(PYTHON) -m venv $(LOCKER) && $(LOCKER)/bin/python $(PIP) --require-hashes -r $(UV_LOCK); }
	@$(PYTHON) -c 'import tomllib; print("pip", *tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(LOCKER)/bin/uv pip compile --quiet pyproject.toml - --extra test --generate-hashes \
	      --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	      --custom-compile-command "make lock" $(LOCK_ARGS) -o $(LOCK)
	@echo "$(LOCK): $$(grep -c '^[a-z]' $(LOCK)) packages pinned"

demo: $(STAMP)
	@bash examples/demo.sh $(VENV)

tools:
	@bash .ci/tools.sh

# everything but the image build (minutes of debootstrap, twice): `make image-test` runs that
test: $(STAMP) tools
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m mypy
	$(PY) $(PYTEST) -m "not image"

# The inner loop: everything but the tests marked slow (fault injection, real tools, servers).
test-fast: $(STAMP)
	$(PY) $(PYTEST) -m "not slow and not image"

test-latest: tools
	@test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python $(PIP) --upgrade pip setuptools
	$(LATEST)/bin/python $(PIP) --upgrade --upgrade-strategy eager -e '.[test]'
	@$(LATEST)/bin/python .ci/lockdiff.py $(LOCK)
	$(LATEST)/bin/python $(PYTEST)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m mypy

# mypy --strict over the files pyproject.toml's [tool.mypy] names; its cache (.mypy_cache/) makes a rerun seconds
typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/run $(BENCH_ARGS)
	$(PY) bench/bench_runner.py

schemas: $(STAMP)
	$(VENV)/bin/takt schema --out schemas --markdown docs/spec-reference.md

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
	$(PY) -m pytest -x -q -s -m image tests/test_image.py

# Mutation testing of the trust path (mutation/modules.toml: each module with the tests that guard it); slow,
# never part of `make test`. cosmic-ray lives in its own venv from its own hashed lock, so requirements.lock
# is unchanged. MUTATION_ARGS: module paths, --survivors, --check MODULE ID [TEST ...]; report in build/mutation/.
MUTANT := .venv-mutation
$(MUTANT)/.installed: mutation/requirements.lock
	@test -x $(MUTANT)/bin/python || $(PYTHON) -m venv $(MUTANT)
	$(MUTANT)/bin/python $(PIP) --require-hashes -r mutation/requirements.lock
	@touch $@

mutation: $(STAMP) $(MUTANT)/.installed
	$(PY) mutation/run.py $(MUTATION_ARGS)  # it nices each test run itself

# uv's own hashed lock (every platform's wheel of UV_VERSION), which the install step and `make lock` bootstrap from
uv-lock:
	@test -x $(LOCKER)/bin/uv || { $(PYTHON) -m venv $(LOCKER) && $(LOCKER)/bin/python $(PIP) uv==$(UV_VERSION); }
	echo "uv==$(UV_VERSION)" | $(LOCKER)/bin/uv pip compile --quiet - --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --custom-compile-command "make uv-lock" -o $(UV_LOCK)

mutation-lock:
	@test -x $(LOCKER)/bin/uv || { $(PYTHON) -m venv $(LOCKER) && $(LOCKER)/bin/python $(PIP) --require-hashes -r $(UV_LOCK); }
	$(LOCKER)/bin/uv pip compile --quiet mutation/requirements.in --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --custom-compile-command "make mutation-lock" -o mutation/requirements.lock

clean:
	rm -rf $(VENV) $(LATEST) $(LOCKER) $(MUTANT) build *.egg-info .pytest_cache .ruff_cache
