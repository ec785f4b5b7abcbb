# ARC reproduction pipeline. `make test` and `make reproduce` install .venv first on a fresh clone.
PROFILE ?= mini
ARGS ?=
BENCH ?=
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup lock test bench train reproduce figures clean-artifacts

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

train: $(STAMP) ## one training run of a task (python -m core.single_run)
	$(PY) -m core.single_run profile=$(PROFILE) $(ARGS)

reproduce: $(STAMP) ## the whole pipeline on one profile; each stage skips what is done and resumes the rest
	$(MAKE) --no-print-directory datagen PROFILE=$(PROFILE) ARGS=
	$(MAKE) --no-print-directory train_arc PROFILE=$(PROFILE) ARGS=
	$(MAKE) --no-print-directory select PROFILE=$(PROFILE) ARGS=
	$(MAKE) --no-print-directory benchmark PROFILE=$(PROFILE) ARGS=
	$(MAKE) --no-print-directory figures PROFILE=$(PROFILE) ARGS=

figures: $(STAMP) ## Tables 2-4 (markdown, * and # markers) and median-run curves from the benchmark
	$(PY) -m figures profile=$(PROFILE) $(ARGS)

clean-artifacts:
	rm -rf artifacts/$(PROFILE)

# ---- stage targets ----------------------------------------------------------------------------------
# Every study, its grid and its sizes are in configs/ (configs/experiment/ holds the paper's studies); the
# targets below only name them. LAUNCHER picks where a stage's multirun jobs run: `local` (joblib, this machine)
# or `slurm` (submitit); smoke runs its seconds-long jobs one by one in-process (worker start-up would dominate).
LAUNCHER ?= $(if $(filter smoke,$(PROFILE)),,local)
HYDRA_LAUNCHER = $(if $(LAUNCHER),hydra/launcher=$(LAUNCHER))
PLAN_PROFILE ?= paper
.PHONY: datagen correct plan train_arc select range-test benchmark benchmark-table n-study metric-study

datagen: $(STAMP) ## stages 1-2: the 12 Table-1 tasks (configs/experiment/datagen_table1.yaml), then correction
	$(PY) -m datagen -m profile=$(PROFILE) $(ARGS)
	$(PY) -m datagen.correct profile=$(PROFILE)

correct: $(STAMP) ## ground-truth correction only (e.g. ARGS="rule=argmin last_point=drop")
	$(PY) -m datagen.correct profile=$(PROFILE) $(ARGS)

plan: $(STAMP) ## run count, epochs and GPU-hours of generating the paper-profile dataset
	$(PY) -m datagen.plan profile=$(PLAN_PROFILE) $(ARGS)

train_arc: $(STAMP) ## stage 3: pre-flight check, the ten candidates (a multirun), their metrics table
	$(PY) -m arc_model profile=$(PROFILE) dry_run=true $(ARGS)
	$(PY) -m arc_model -m profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)
	$(PY) -m arc_model.candidates profile=$(PROFILE) $(ARGS)

select: $(STAMP) ## stage 4: proxy runs of every candidate (configs/experiment/proxy_selection.yaml), then the pick
	$(PY) -m selection -m profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)
	$(PY) -m selection.pick profile=$(PROFILE) $(ARGS)

range-test: $(STAMP) ## LR range tests of the three benchmark tasks (SC's LRmax on mini and smoke)
	$(PY) -m experiments.range_test -m profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)

BENCH_STUDIES ?= table2_cifar10 table3_mscoco table4_ptb extended_baselines
benchmark: range-test ## stage 5: Tables 2-4 and the extended baselines, then the per-task median tables
	for study in $(BENCH_STUDIES); do \
	  $(PY) -m experiments.benchmark -m experiment=$$study profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS) || exit 1; \
	done
	$(PY) -m experiments.table profile=$(PROFILE)

benchmark-table: $(STAMP)
	$(PY) -m experiments.table profile=$(PROFILE)

n-study: $(STAMP) ## ARC every n = 1..6 epochs on the CIFAR10 task (App. A.5)
	$(PY) -m experiments.benchmark -m experiment=n_study profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)
	$(PY) -m experiments.table profile=$(PROFILE) study=n_study

metric-study: $(STAMP) ## best-by-metric models of candidates 1-5 on the CIFAR10 task (App. A.1)
	$(PY) -m experiments.benchmark -m experiment=metric_study profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)
	$(PY) -m experiments.table profile=$(PROFILE) study=metric_study
