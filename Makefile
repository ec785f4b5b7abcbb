# ARC reproduction pipeline. `make test` and `make reproduce` install .venv first on a fresh clone.
PROFILE ?= mini
ARGS ?=
BENCH ?=
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup lock test bench train reproduce clean-artifacts

setup: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

lock: ## regenerate requirements-lock.txt from requirements.txt in a scratch venv
	rm -rf /tmp/arc-lock-venv && $(PYTHON) -m venv /tmp/arc-lock-venv
	/tmp/arc-lock-venv/bin/pip install --quiet -r requirements.txt
	(echo "# Exact versions installed by \`make setup\` (pip freeze of a verified .venv on Python 3.11)."; \
	 echo "# Edit requirements.txt, then regenerate with: make lock"; \
	 /tmp/arc-lock-venv/bin/pip freeze) > requirements-lock.txt

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP) ## all benchmarks; one with e.g. `make bench BENCH=engine`
	$(PY) -m bench $(BENCH)

train: $(STAMP)
	$(PY) -m core.train profile=$(PROFILE) $(ARGS)

reproduce: $(STAMP)
	$(PY) -m core.train profile=$(PROFILE) $(ARGS)

clean-artifacts:
	rm -rf artifacts/$(PROFILE)

# ---- stage targets (one section per stage) ------------------------------------------------------
# datagen (issue #3)

# arc_model (issue #4)

# experiments (issue #5)

