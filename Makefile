# ARC reproduction pipeline. `make test` and `make reproduce` install .venv first on a fresh clone.
PROFILE ?= mini
ARGS ?=
BENCH ?=
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help setup lock test test-fast bench train reproduce figures clean-artifacts

# setup: the lock is a complete `pip freeze --all`, installed with --no-deps so that nothing outside it comes in:
# fastestimator 1.7 asks for opencv-python==4.7.0.72, which would land beside the lock's opencv-python-headless in
# the same cv2/ directory. A venv that already has both gets the headless one reinstalled whole (step 3). A package
# the lock no longer holds is removed (step 2), so an existing venv ends as a fresh one would.
OPENCV_HEADLESS = $(shell grep -i '^opencv-python-headless==' requirements-lock.txt)

setup: $(STAMP) ## create .venv with exactly requirements-lock.txt (about 8 GB); ends with what it holds and its size
	@printf 'setup: %s packages of requirements-lock.txt + arc-repro (editable) in $(VENV): %s; %s on disk\n' \
	  "$$($(PY) -m pip list --format=freeze --exclude-editable 2>/dev/null | wc -l)" \
	  "$$($(PY) -m pip list --format=freeze 2>/dev/null | grep -i -E '^(torch|tensorflow|fastestimator|opencv-python.*)==' | paste -sd ' ')" \
	  "$$(du -sh $(VENV) | cut -f1)"

$(STAMP): requirements-lock.txt pyproject.toml
	@echo "setup [1/4] virtual environment $(VENV) ($$($(PYTHON) --version))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "setup [2/4] $$(grep -c '==' requirements-lock.txt) pinned packages of requirements-lock.txt, --no-deps (about 8 GB, minutes); nothing else"
	$(PY) -m pip install --no-deps -r requirements-lock.txt
	@grep '==' requirements-lock.txt | cut -d= -f1 | tr A-Z_ a-z- | sort > $(VENV)/.locked-names; \
	extra="$$($(PY) -m pip list --format=freeze --exclude-editable 2>/dev/null | cut -d= -f1 | tr A-Z_ a-z- | sort \
	  | comm -23 - $(VENV)/.locked-names | grep -v -x opencv-python)"; rm -f $(VENV)/.locked-names; \
	if [ -n "$$extra" ]; then echo "  removing what the lock does not hold:" $$extra; \
	  $(PY) -m pip uninstall --quiet -y $$extra; fi
	@echo "setup [3/4] one OpenCV ($(OPENCV_HEADLESS))"
	@if $(PY) -m pip show opencv-python >/dev/null 2>&1; then \
	  rm -rf $(VENV)/.opencv && $(PY) -m pip download --quiet --no-deps -d $(VENV)/.opencv "$(OPENCV_HEADLESS)" \
	  && $(PY) -m pip uninstall --quiet -y opencv-python \
	  && $(PY) -m pip install --quiet --no-deps --force-reinstall $(VENV)/.opencv/*.whl \
	  && echo "  removed opencv-python, reinstalled $(OPENCV_HEADLESS)" \
	  || echo "  WARNING: could not switch to $(OPENCV_HEADLESS) (see above); check that \`import cv2\` works"; \
	  rm -rf $(VENV)/.opencv; \
	else echo "  only opencv-python-headless is installed"; fi
	@echo "setup [4/4] this project, editable (pip install -e .)"
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

lock: ## regenerate requirements-lock.txt: pip freeze --all of a scratch venv with requirements.txt, less opencv-python
	rm -rf /tmp/arc-lock-venv && $(PYTHON) -m venv /tmp/arc-lock-venv
	/tmp/arc-lock-venv/bin/pip install --quiet --upgrade pip
	/tmp/arc-lock-venv/bin/pip install -r requirements.txt
	(echo "# Exact versions \`make setup\` installs (pip install --no-deps -r requirements-lock.txt), Python 3.11."; \
	 echo "# \`pip freeze --all\` of a venv with requirements.txt installed, less opencv-python (one OpenCV: the headless one)."; \
	 echo "# Edit requirements.txt, then regenerate with: make lock"; \
	 /tmp/arc-lock-venv/bin/pip freeze --all | grep -v -i '^opencv-python==') > requirements-lock.txt.new
	mv requirements-lock.txt.new requirements-lock.txt
	@echo "lock: requirements-lock.txt holds $$(grep -c '==' requirements-lock.txt) pins"

help: ## this list (make <target> PROFILE=smoke|mini|paper ARGS="<Hydra overrides>")
	@echo "make <target> [PROFILE=mini] [ARGS=...]; targets (reproduce passes ARGS to every stage, after check-args):"
	@awk -F':.*## ' '/^[a-z][a-zA-Z0-9_-]*:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file to a worker (its fixtures built once);
# TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
PYTEST = $(PY) -m pytest -q $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)
test: $(STAMP) ## the whole test suite, slow tests included, in TEST_WORKERS=2 processes (installs .venv first)
	$(PYTEST)

test-fast: $(STAMP) ## the tests not marked slow (under 3 minutes on 2 cores)
	$(PYTEST) -m "not slow"

bench: $(STAMP) ## all benchmarks; one with e.g. `make bench BENCH=engine`
	$(PY) -m bench $(BENCH)

train: $(STAMP) ## one training run of a task (python -m core.single_run)
	$(PY) -m core.single_run profile=$(PROFILE) $(ARGS)

# `make reproduce ARGS="..."` hands ARGS to every command of every stage (the sub-makes inherit ARGS; REPRODUCE=1 adds
# it to the follow-up commands a stage target run alone does not pass it to: datagen's correction, the benchmark
# tables). check-args first composes every stage's config with ARGS and refuses, in one line, an override that one
# of them lacks (e.g. bench_task=..., which only the benchmark stage has), a sweep, or profile=... (use PROFILE).
reproduce: $(STAMP) ## the whole pipeline on one profile; ARGS reach every stage (check-args refuses one a stage lacks)
	$(if $(strip $(ARGS)),$(MAKE) --no-print-directory check-args PROFILE=$(PROFILE))
	$(if $(filter paper,$(PROFILE)),$(MAKE) --no-print-directory check-data PROFILE=$(PROFILE) REPRODUCE=1)
	$(MAKE) --no-print-directory datagen PROFILE=$(PROFILE) REPRODUCE=1
	$(MAKE) --no-print-directory train_arc PROFILE=$(PROFILE) REPRODUCE=1
	$(MAKE) --no-print-directory select PROFILE=$(PROFILE) REPRODUCE=1
	$(MAKE) --no-print-directory benchmark PROFILE=$(PROFILE) REPRODUCE=1
	$(MAKE) --no-print-directory n-study metric-study PROFILE=$(PROFILE) REPRODUCE=1
	$(MAKE) --no-print-directory figures PROFILE=$(PROFILE) REPRODUCE=1

.PHONY: check-args
check-args: $(STAMP) ## does every stage of `make reproduce` take ARGS? (one line naming an override a stage refuses)
	$(PY) -m pipeline.plan --check-args profile=$(PROFILE) --studies="$(BENCH_STUDIES)" $(ARGS)

figures: $(STAMP) ## Tables 2-4 (md/LaTeX/CSV, * and # markers), Figs 3-14, artifacts/<profile>/REPORT.md
	$(PY) -m figures profile=$(PROFILE) $(ARGS)

.PHONY: figures-from-logs
figures-from-logs: $(STAMP) ## Tables 2-4 and Figs 3-6, 10-13 from the authors' FastEstimator logs (LOGS=DIR)
	@test -n "$(LOGS)" || { echo "usage: make figures-from-logs LOGS=DIR (holding normal_comparison/, meta_comparison/)"; exit 2; }
	$(PY) -m figures source=fe_logs logs_dir=$(abspath $(LOGS)) profile=$(PROFILE) $(ARGS)

clean-artifacts: ## delete artifacts/<PROFILE>
	rm -rf artifacts/$(PROFILE)

# ---- stage targets ----------------------------------------------------------------------------------
# Every study, its grid and its sizes are in configs/ (configs/experiment/ holds the paper's studies); the
# targets below only name them. LAUNCHER picks where a stage's multirun jobs run: `local` (joblib, this machine)
# or `slurm` (submitit); smoke runs its seconds-long jobs one by one in-process (worker start-up would dominate).
LAUNCHER ?= $(if $(filter smoke,$(PROFILE)),,local)
HYDRA_LAUNCHER = $(if $(LAUNCHER),hydra/launcher=$(LAUNCHER))
PLAN_PROFILE ?= paper
# ARGS for the follow-up commands of a stage (datagen's correction, the benchmark tables) under `make reproduce` only:
# run alone, `make datagen ARGS=datagen_task=...` must not hand a datagen key to the correction's config
REPRODUCE ?=
REPRODUCE_ARGS = $(if $(REPRODUCE),$(ARGS))
.PHONY: datagen correct plan train_arc select range-test benchmark benchmark-table
.PHONY: n-study metric-candidates metric-study

datagen: $(STAMP) ## stages 1-2: the 12 Table-1 tasks (configs/experiment/datagen_table1.yaml), then correction
	$(PY) -m datagen -m profile=$(PROFILE) $(DATAGEN_SWEEP) $(ARGS)
	$(PY) -m datagen.correct profile=$(PROFILE) $(REPRODUCE_ARGS)

correct: $(STAMP) ## ground-truth correction only (e.g. ARGS="rule=argmin last_point=drop")
	$(PY) -m datagen.correct profile=$(PROFILE) $(ARGS)

plan: $(STAMP) ## every stage and study: jobs, runs, epochs, steps, GPU-hours (measured or guessed), SLURM commands
	$(PY) -m pipeline.plan profile=$(PLAN_FOR) $(ARGS)

train_arc: $(STAMP) ## stage 3: pre-flight check, the ten candidates (a multirun), their metrics table, diagnosis.txt
	$(PY) -m arc_model profile=$(PROFILE) dry_run=true $(LOGIN_NODE) $(ARGS)
	$(PY) -m arc_model -m profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)
	$(PY) -m arc_model.candidates profile=$(PROFILE) $(ARGS)
	$(PY) -m arc_model.diagnose profile=$(PROFILE) $(ARGS)

select: $(STAMP) ## stage 4: proxy runs of every candidate (configs/experiment/proxy_selection.yaml), then the pick
	$(PY) -m selection -m profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)
	$(PY) -m selection.pick profile=$(PROFILE) $(LOGIN_NODE) $(ARGS)

range-test: $(STAMP) ## LR range tests of the three benchmark tasks (SC's LRmax on mini and smoke)
	$(PY) -m experiments.range_test -m profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)

BENCH_STUDIES ?= table2_cifar10 table3_mscoco table4_ptb extended_baselines
benchmark: range-test ## stage 5: Tables 2-4 and the extended baselines, then the per-task median tables
	for study in $(BENCH_STUDIES); do \
	  $(PY) -m experiments.benchmark -m experiment=$$study profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS) || exit 1; \
	done
	$(PY) -m experiments.table profile=$(PROFILE) $(REPRODUCE_ARGS)

benchmark-table: $(STAMP) ## only the per-task median tables of the benchmark runs done so far
	$(PY) -m experiments.table profile=$(PROFILE)

# The appendix studies size their seeds per profile (`sizes` of configs/experiment/n_study.yaml, metric_study.yaml);
# their tables take the experiment, whose paths the runs were named with (the metric study: paths.metric_candidates)
n-study: $(STAMP) ## ARC every n = 1..6 epochs on the CIFAR10 task, stage 3's candidates 1-5 (App. A.5)
	$(PY) -m experiments.benchmark -m experiment=n_study profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)
	$(PY) -m experiments.table profile=$(PROFILE) experiment=n_study $(REPRODUCE_ARGS)

metric-candidates: $(STAMP) ## App. A.1's five ARC candidates, 30% held out (paths.metric_candidates), and their table
	$(PY) -m arc_model -m experiment=metric_candidates profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)
	$(PY) -m arc_model.candidates experiment=metric_candidates profile=$(PROFILE) $(ARGS)

metric-study: metric-candidates ## best-by-metric models of the metric candidates on the CIFAR10 task (App. A.1)
	$(PY) -m experiments.benchmark -m experiment=metric_study profile=$(PROFILE) $(HYDRA_LAUNCHER) $(ARGS)
	$(PY) -m experiments.table profile=$(PROFILE) experiment=metric_study $(REPRODUCE_ARGS)

# ---- the paper's amount of ARC data on the stand-ins ---------------------------------------------------------------
# configs/experiment/datagen_paper_count.yaml (42 runs per task: 5,040 points on mini), ARC's candidates at the paper's
# 300 epochs (docs/experiments.md §4.3; mini's default is 100 on ~720 points), the proxy selection, and the 9 cells of
# Tables 2-4 with BLR, arc and arc_published. Everything lives under artifacts/<profile>_paper_count/, so the
# profile's default run is untouched. Every step resumes: after a kill, run the same command again.
# The runs are generated in blocks of 6 per task over all 12 tasks (runs 0-5 of every task, then 6-11, ...), so that
# the data on disk is balanced over the tasks at any moment; the first block is the profile's default dataset.
PAPER_COUNT = paths.artifacts='$${paths.root}/artifacts/$(PROFILE)_paper_count'
PAPER_COUNT_EPOCHS = $(if $(filter mini,$(PROFILE)),epochs=300)
# PAPER_COUNT_BLOCKS="6 12 18" stops at 18 runs per task (and the later steps train on those), e.g. where the whole
# study does not fit the time at hand: the correction report and candidates.csv say how many points they used.
PAPER_COUNT_BLOCKS ?= $(if $(filter smoke,$(PROFILE)),1 2,6 12 18 24 30 36 42)
.PHONY: study-paper-count
study-paper-count: $(STAMP) ## ARC trained on the paper's amount of data (5,040 points on mini), selected, benchmarked
	for runs in $(PAPER_COUNT_BLOCKS); do \
	  $(PY) -m datagen -m experiment=datagen_paper_count profile=$(PROFILE) runs=$$runs $(PAPER_COUNT) || exit 1; \
	done
	$(PY) -m datagen.correct profile=$(PROFILE) $(PAPER_COUNT)
	$(PY) -m arc_model profile=$(PROFILE) dry_run=true $(PAPER_COUNT_EPOCHS) $(PAPER_COUNT)
	$(PY) -m arc_model -m profile=$(PROFILE) $(HYDRA_LAUNCHER) $(PAPER_COUNT_EPOCHS) $(PAPER_COUNT)
	$(PY) -m arc_model.candidates profile=$(PROFILE) $(PAPER_COUNT)
	$(PY) -m arc_model.diagnose profile=$(PROFILE) $(PAPER_COUNT)
	$(PY) -m selection -m profile=$(PROFILE) $(HYDRA_LAUNCHER) $(PAPER_COUNT)
	$(PY) -m selection.pick profile=$(PROFILE) $(PAPER_COUNT)
	$(PY) -m experiments.range_test -m profile=$(PROFILE) $(HYDRA_LAUNCHER) $(PAPER_COUNT)
	for study in table2_cifar10 table3_mscoco table4_ptb; do \
	  $(PY) -m experiments.benchmark -m experiment=$$study profile=$(PROFILE) schedule=constant,arc,arc_published \
	    $(HYDRA_LAUNCHER) $(PAPER_COUNT) || exit 1; \
	done
	$(PY) -m experiments.table profile=$(PROFILE) $(PAPER_COUNT)
	$(PY) -m figures profile=$(PROFILE) $(PAPER_COUNT)

# ---- inputs, GPU timing, planning, SLURM ---------------------------------------------------------------------------
# `make check-data PROFILE=paper paths.data=/data paths.weights=/weights`: make variables named like the keys of
# the paths group are passed on as overrides. `make plan` plans PROFILE when given, else PLAN_PROFILE (paper).
PATH_OVERRIDES = $(foreach key,paths.root paths.data paths.weights,$(if $($(key)),$(key)=$($(key))))
PLAN_FOR = $(if $(filter command line environment,$(origin PROFILE)),$(PROFILE),$(PLAN_PROFILE))
# LAUNCHER=slurm: datagen sends one job per task and run (run_index over the profile's runs per task, from
# pipeline.plan), and the one-step commands that run on the submitting node (train_arc's pre-flight, selection's pick)
# use its CPU; `make plan` prints every command.
DATAGEN_SWEEP = $(if $(filter slurm,$(LAUNCHER)),$(HYDRA_LAUNCHER) 'run_index=range(0,$(shell $(PY) -m pipeline.plan profile=$(PROFILE) --runs-per-task))')
LOGIN_NODE = $(if $(filter slurm,$(LAUNCHER)),profile.device=cpu)
.PHONY: check-data bench-gpu

check-data: $(STAMP) ## every dataset, tokenizer and weight file the profile reads: path, size, found or MISSING
	$(PY) -m pipeline.check_data profile=$(PROFILE) $(PATH_OVERRIDES) $(ARGS)

bench-gpu: $(STAMP) ## steps/s on this GPU of the paper tasks, the 12 datagen models, ARC training -> artifacts/bench/gpu.json
	$(PY) -m bench gpu

# ---- reliability ----------------------------------------------------------------------------------------------------
# Kills `make reproduce PROFILE=smoke` (SIGKILL to its process group) at random moments, one in each stage (FAULT_ARGS
# e.g. "--kills 14 --seed 3"), while an uninterrupted run goes on beside it; reruns until it finishes and checks every
# table file against the uninterrupted run's. About one smoke pipeline plus a partial one per kill: .ci/run runs it
# after `make test` rather than inside the suite; scratch roots, never ./artifacts.
FAULT_ARGS ?=
.PHONY: fault-test
fault-test: $(STAMP) ## SIGKILL `make reproduce PROFILE=smoke` once in every stage, rerun; tables must be identical
	$(PY) tests/fault_injection.py $(FAULT_ARGS)
