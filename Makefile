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

train: $(STAMP)
	$(PY) -m core.train profile=$(PROFILE) $(ARGS)

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

# ---- stage targets (one section per stage) ------------------------------------------------------
# datagen (issue #3)
# `make datagen` generates the ARC points of all 12 Table-1 tasks (a Hydra multirun over datagen_task; add
# ARGS="hydra/launcher=joblib" or "hydra/launcher=slurm" to spread it), then corrects their labels.
DATAGEN_TASKS ?= svhn_vgg19bn,svhn_vgg16_ecc,svhn_vgg19_adversarial,food101_densenet121,food101_inceptionv3,cub200_multitask,imdb_lstm,mitmovie_bert_ner,omniglot_siamese,shakespeare_gru,montgomery_unet,cub200_unet
PLAN_PROFILE ?= paper
.PHONY: datagen correct plan

datagen: $(STAMP)
	$(PY) -m datagen -m profile=$(PROFILE) datagen_task=$(DATAGEN_TASKS) $(ARGS)
	$(PY) -m datagen.correct profile=$(PROFILE)

correct: $(STAMP) ## ground-truth correction only (e.g. ARGS="rule=argmin last_point=drop")
	$(PY) -m datagen.correct profile=$(PROFILE) $(ARGS)

plan: $(STAMP) ## run count, epochs and GPU-hours of generating the paper-profile dataset
	$(PY) -m datagen.plan profile=$(PLAN_PROFILE) $(ARGS)

# arc_model (issue #4)
# make train_arc PROFILE=mini: ten ARC candidates (seeds 1..10) as a Hydra multirun (joblib here; on SLURM
# pass ARC_LAUNCHER=hydra/launcher=slurm), after a pre-flight check of config and dataset, then
# the candidates' held-out metrics table. Timing without datagen's dataset: ARGS=data.synthetic_points=1000
ARC_LAUNCHER ?= hydra/launcher=joblib
.PHONY: train_arc
train_arc: $(STAMP)
	$(PY) -m arc_model profile=$(PROFILE) dry_run=true $(ARGS)
	$(PY) -m arc_model --multirun profile=$(PROFILE) 'seed=range(1,11)' $(ARC_LAUNCHER) $(ARGS)
	$(PY) -m arc_model.candidates profile=$(PROFILE) $(ARGS)

# selection: score every ARC candidate on the WideResNet/SVHN proxy, keep the best (-> selection/arc.h5)
.PHONY: select
select: $(STAMP)
	$(PY) -m selection profile=$(PROFILE) $(ARGS)

# experiments (issue #5)
# `make benchmark` = LR range tests (for SC), the grid as Hydra multiruns (joblib locally; add
# ARGS=hydra/launcher=slurm for SLURM), then the per-task median tables. Reruns skip finished runs.
# ARC_WEIGHTS: ARC model to deploy (default: the project's selection output).
BENCH_TASKS ?= cifar10,mscoco,ptb
BENCH_SEEDS ?= 0,1,2,3,4
LR0_SCHEDULES ?= constant,cd,ccd,ed,arc,plateau,greedy,schedulefree
OWN_LR0_SCHEDULES ?= sc,sls,prodigy
ARC_WEIGHTS ?= artifacts/$(PROFILE)/selection/arc.h5
# smoke runs jobs in-process one by one (seconds each: worker start-up would dominate); mini/paper use joblib
LAUNCHER ?= $(if $(filter smoke,$(PROFILE)),,hydra/launcher=local)
.PHONY: range-test benchmark benchmark-table n-study

range-test: $(STAMP)
	$(PY) -m experiments.range_test -m $(LAUNCHER) profile=$(PROFILE) bench_task=$(BENCH_TASKS) $(ARGS)

benchmark: range-test
	$(PY) -m experiments.benchmark -m $(LAUNCHER) profile=$(PROFILE) bench_task=$(BENCH_TASKS) \
	  schedule=$(LR0_SCHEDULES) lr0_index=0,1,2 seed=$(BENCH_SEEDS) arc_weights=$(abspath $(ARC_WEIGHTS)) $(ARGS)
	$(PY) -m experiments.benchmark -m $(LAUNCHER) profile=$(PROFILE) bench_task=$(BENCH_TASKS) \
	  schedule=$(OWN_LR0_SCHEDULES) seed=$(BENCH_SEEDS) $(ARGS)
	$(PY) -m experiments.table profile=$(PROFILE)

benchmark-table: $(STAMP)
	$(PY) -m experiments.table profile=$(PROFILE)

n-study: $(STAMP) ## ARC every n = 1..6 epochs on the CIFAR10 task (App. A.5)
	$(PY) -m experiments.benchmark --config-name n_study -m $(LAUNCHER) profile=$(PROFILE) \
	  schedule.frequency=1,2,3,4,5,6 lr0_index=0,1,2 seed=$(BENCH_SEEDS) arc_weights=$(abspath $(ARC_WEIGHTS)) $(ARGS)
	$(PY) -m experiments.table --config-name n_study profile=$(PROFILE)

