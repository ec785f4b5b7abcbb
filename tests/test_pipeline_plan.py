"""pipeline.plan: `make plan` (the paper plan's counts, from the composed sweeps; its printed stages and SLURM
commands), `make check-args`' check of the overrides, and `make plan` with `make bench-gpu`'s results: measured rates where artifacts/bench/gpu.json has the task (the
benchmark tasks, the proxy, each datagen task's paper model, ARC's candidate training), and every row marked
`measured` or `guessed`. The gpu.json files here are written by hand."""
from __future__ import annotations

import json
import math

import pytest
from hydra import compose, initialize_config_dir

from conftest import CONFIGS
from pipeline.plan import EPOCH_MINUTES, Planner, print_plan

pytestmark = pytest.mark.slow  # every test here composes the paper profile's stages (seconds to a minute each)


def gpu_json(path, rates: dict, key: str = "fp32"):
    path.write_text(json.dumps({"device": "hand-written", "tasks": {
        name: {key: {"steps": 10, "seconds": 1.0, "steps_per_s": rate}} for name, rate in rates.items()}}))
    return path


def test_without_gpu_json_every_row_is_guessed(paper_plan):
    _, rows = paper_plan
    assert {row.basis for row in rows.values()} == {"guessed"}
    assert {source for _, source in rows["datagen_table1"].rates.values()} == {EPOCH_MINUTES}


def test_measured_rates_replace_guesses_task_by_task(tmp_path, paper_plan):
    base_planner, base = paper_plan
    path = gpu_json(tmp_path / "gpu.json", {"cifar10": 200.0, "arc": 500.0, "svhn_vgg19bn": 10.0})
    planner = base_planner.with_bench_results(path)
    rows = {row.study: row for row in planner.rows()}
    assert base_planner.measured is None  # the shared plan keeps its own (no) results

    cifar = rows["table2_cifar10"]  # 85 runs x 30 epochs x 391 steps at the measured 200 steps/s
    assert cifar.basis == "measured" and cifar.rates["cifar10"] == (200.0, "bench-gpu fp32")
    assert cifar.gpu_hours == pytest.approx(85 * 30 * 391 / 200 / 3600)
    assert rows["candidates"].basis == "measured"  # 10 candidates x 300 epochs x 40 steps at 500 steps/s
    assert rows["candidates"].gpu_hours == pytest.approx(3000 * 40 / 500 / 3600)
    for study in ("table3_mscoco", "table4_ptb", "proxy_selection"):  # the authors' logged or assumed rates
        assert rows[study].basis == "guessed"
        assert rows[study].gpu_hours == pytest.approx(base[study].gpu_hours)

    datagen = rows["datagen_table1"]  # 1 of 12 tasks measured: the row stays a guess, that task's hours change
    assert datagen.basis == "guessed" and datagen.rates["svhn_vgg19bn"] == (10.0, "bench-gpu fp32")
    assert sum(source == EPOCH_MINUTES for _, source in datagen.rates.values()) == 11
    assert "bench-gpu (1 of 12 tasks)" in datagen.rate
    from datagen.plan import task_plan

    cfg = base_planner.compose("datagen", ["datagen_task=svhn_vgg19bn"])
    plan = task_plan(cfg)
    steps = plan["epochs"] * math.ceil(73_257 / 128)  # SVHN's training set, batch 128
    assert datagen.gpu_hours == pytest.approx(base["datagen_table1"].gpu_hours - plan["gpu_hours"]
                                              + steps / 10.0 / 3600)


def test_all_datagen_tasks_measured_and_fast_options_fall_back_to_fp32(tmp_path, paper_plan):
    from bench.bench_gpu import datagen_tasks

    names = datagen_tasks()
    assert len(names) == 12
    path = gpu_json(tmp_path / "gpu.json", {**{name: 5.0 for name in names}, "cifar10": 300.0})
    planner = Planner(["profile=paper", "profile.precision=bf16", "profile.channels_last=true"], bench_results=path)
    assert planner.options == "fast"
    rows = {row.study: row for row in planner.rows()}
    assert rows["datagen_table1"].basis == "measured"
    assert rows["table2_cifar10"].rates["cifar10"] == (300.0, "bench-gpu fp32")  # no `fast` measurement


def test_print_plan_marks_each_row(tmp_path, capsys, paper_plan):
    path = gpu_json(tmp_path / "gpu.json", {"cifar10": 200.0})
    print_plan(paper_plan[0].with_bench_results(path))
    out = capsys.readouterr().out
    lines = {line.split()[2]: line for line in out.splitlines() if line.startswith(("1-2 ", "3 ", "4 ", "5 "))}
    assert " measured " in lines["table2_cifar10"] and " guessed " in lines["table3_mscoco"]
    assert " guessed " in lines["datagen_table1"]
    assert "basis: measured = " in out


# ---- the paper plan without bench-gpu results ----

def test_plan_counts_come_from_the_composed_sweeps(paper_plan):
    planner, rows = paper_plan
    # docs/experiments.md §2: 12 tasks x 42 runs x 10 points; one SLURM job per task and run
    assert (rows["datagen_table1"].runs, rows["datagen_table1"].jobs, planner.points) == (504, 504, 5040)
    assert (rows["candidates"].jobs, rows["candidates"].epochs) == (10, 3000)  # §3.5, §4.3: 10 x 300 epochs
    assert rows["candidates"].steps == 3000 * 40  # 5040 points / batch 128
    # §6: 10 candidates x 3 LR0 x 5 repeats of 30 epochs x 573 steps; the published ARC skips (unset)
    assert (rows["proxy_selection"].jobs, rows["proxy_selection"].runs) == (165, 150)
    assert rows["proxy_selection"].steps == 150 * 30 * 573
    # Tables 2-4: 8 schedules x 3 LR0 x 5 seeds = 120 jobs; BLR/CD/CCD/ED/ARC in 3 columns, SC and SLS in one
    for study, task_steps, epochs in (("table2_cifar10", 391, 30), ("table3_mscoco", 1500, 30), ("table4_ptb", 345, 98)):
        row = rows[study]
        assert (row.jobs, row.runs, row.epochs) == (120, 85, 85 * epochs)
        assert row.steps == 85 * epochs * task_steps
    assert rows["table3_mscoco"].gpu_hours == pytest.approx(85 * 30 * 1500 / 4.07 / 3600)  # authors' logged rate
    # the appendix studies follow their configs: every job trains; n-study runs 30 epochs for n <= 3, 10n above
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        n_study = compose("benchmark", ["profile=paper", "experiment=n_study"], return_hydra_config=True)
        metric = compose("benchmark", ["profile=paper", "experiment=metric_study"], return_hydra_config=True)
    count = lambda params, skip=(): math.prod(len(str(v).split(",")) for k, v in params.items() if k not in skip)  # noqa: E731
    frequencies = [int(n) for n in str(n_study.hydra.sweeper.params["schedule.frequency"]).split(",")]
    per_frequency = count(n_study.hydra.sweeper.params, skip=("schedule.frequency",))
    assert rows["n_study"].runs == rows["n_study"].jobs == per_frequency * len(frequencies)
    assert rows["n_study"].epochs == per_frequency * sum(30 if n <= 3 else 10 * n for n in frequencies)
    assert rows["metric_study"].runs == count(metric.hydra.sweeper.params)
    # docs/experiments.md §10: n-study 6 n x 5 models x 3 LR0 x 5 repeats; metric study 5 candidates x 6 models x
    # 3 LR0 x 7 repeats, its five candidates trained for 300 epochs on 70% of the 5,040 points
    assert (rows["n_study"].runs, rows["metric_study"].runs) == (450, 630)
    assert (rows["metric_candidates"].jobs, rows["metric_candidates"].epochs) == (5, 1500)
    assert rows["metric_candidates"].steps == 1500 * math.ceil(5040 * 0.7 / 128)
    assert all(rows[s].gpu_hours > 0 for s in ("n_study", "metric_candidates", "metric_study"))
    assert rows["extended_baselines"].runs == 150  # 3 tasks x (plateau, greedy, schedule-free x 3 LR0 + Prodigy) x 5


def test_plan_uses_bench_gpu_measurements_when_present(paper_plan, tmp_path):
    planner, rows = paper_plan
    row = planner.with_bench_results(gpu_json(tmp_path / "gpu.json", {"cifar10": 500.0})).study("table2_cifar10")
    assert row.gpu_hours == pytest.approx(rows["table2_cifar10"].steps / 500.0 / 3600)
    assert "bench-gpu fp32" in row.rate


def test_plan_prints_every_stage_and_its_slurm_command(paper_plan, capsys):
    from pipeline.plan import print_plan

    planner, _ = paper_plan
    print_plan(planner)
    out = capsys.readouterr().out
    for stage in ("datagen", "train_arc", "selection", "range-test", "benchmark", "n-study", "metric-study"):
        assert stage in out
    for study in ("n_study", "metric_candidates", "metric_study"):  # a row each, with its GPU-hours
        (line,) = [line for line in out.splitlines() if line.split()[2:3] == [study]]
        assert float(line.split()[7].replace(",", "")) > 0, line
    assert "make metric-candidates PROFILE=paper" in out and "App. A.1, A.5" in out
    assert "hydra/launcher=slurm 'run_index=range(0,42)'" in out
    assert "authors' log" in out and "plan_gpu_hours=" in out


# ---- check-args: every stage's config takes the overrides of `make reproduce ARGS=...` ----

def test_check_overrides_names_the_override_and_the_stage():
    from pipeline.plan import check_overrides

    assert check_overrides("smoke", ["profile.device=cpu", "paths.root=/tmp/x"]) is None
    line = check_overrides("smoke", ["profile.device=cpu", "rule=argmin"])
    assert "'rule=argmin'" in line and "stage datagen" in line and "\n" not in line
    line = check_overrides("mini", ["seed=3"])  # the correction and the figures have no seed
    assert "'seed=3'" in line and "configs/correct.yaml" in line
    assert "sweep" in check_overrides("mini", ["schedule=arc,sc"])
    assert "PROFILE" in check_overrides("mini", ["profile=paper"])
