"""`make plan` with `make bench-gpu`'s results: measured rates where artifacts/bench/gpu.json has the task (the
benchmark tasks, the proxy, each datagen task's paper model, ARC's candidate training), and every row marked
`measured` or `guessed`. The gpu.json files here are written by hand."""
from __future__ import annotations

import json
import math

import pytest

from pipeline.plan import EPOCH_MINUTES, Planner, print_plan


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
    planner = Planner(["profile=paper"], bench_results=path)
    rows = {row.study: row for row in planner.rows()}

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


def test_print_plan_marks_each_row(tmp_path, capsys):
    path = gpu_json(tmp_path / "gpu.json", {"cifar10": 200.0})
    print_plan(Planner(["profile=paper"], bench_results=path))
    out = capsys.readouterr().out
    lines = {line.split()[2]: line for line in out.splitlines() if line.startswith(("1-2 ", "3 ", "4 ", "5 "))}
    assert " measured " in lines["table2_cifar10"] and " guessed " in lines["table3_mscoco"]
    assert " guessed " in lines["datagen_table1"]
    assert "basis: measured = " in out
