"""Data-generation math (docs/experiments.md §2, §2.1): ranking, the continue choice, features, draws and label correction;
a damaged progress file or branch checkpoint restarts the run."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import compose_stage
from core.errors import ConfigError
from core.history import RunHistory
from core.points import corrected_label, order
from datagen.correct import correct_points, equal_thirds_raise, generated_lr_ranges, label_report, mix_drivers
from datagen.procedure import choose_next, draw_run, point_features

INF, NAN = math.inf, math.nan


def test_order_ranks_diverged_branches_worst():
    assert order([0.3, 0.1, 0.2]) == (1, 2, 0)
    assert order([NAN, 0.5, 0.7]) == (1, 2, 0)
    assert order([INF, INF, 0.2]) == (2, 1, 0)  # among diverged, the smaller LR ranks better
    assert order([0.1, 0.1, 0.3]) == (0, 1, 2)


def test_choose_next_drops_the_worst_and_never_continues_a_diverged_branch():
    picks = {choose_next([0.1, 0.2, 0.3], run_seed=7, point=p) for p in range(40)}
    assert picks == {0, 1}  # both survivors get picked, the worst never
    assert all(choose_next([INF, 0.2, INF], 7, p) == 1 for p in range(10))
    assert choose_next([INF, NAN, INF], 7, 0) is None
    assert choose_next([0.1, 0.2, 0.3], 7, 3) == choose_next([0.1, 0.2, 0.3], 7, 3)  # seeded


def test_draws_are_reproducible_and_in_range():
    plans = [draw_run("t", 1, i, 0, ["adam", "sgd", "rmsprop"], (1e-5, 1e-3), (1, 10)) for i in range(300)]
    assert plans[5] == draw_run("t", 1, 5, 0, ["adam", "sgd", "rmsprop"], (1e-5, 1e-3), (1, 10))
    lrs = np.log10([p.lr0 for p in plans])
    assert lrs.min() >= -5 and lrs.max() <= -3 and abs(lrs.mean() + 4) < 0.15  # log-uniform
    assert {p.frequency for p in plans} == set(range(1, 11))
    assert len({p.run_seed for p in plans}) == 300


def test_uniform_lr0_draws_change_only_the_lr0():
    args = ("t", 1, 0, 0, ["adam", "sgd", "rmsprop"], (1e-5, 1e-3), (1, 10))  # task, number, index, seed, ...
    plans = [draw_run(*args[:2], i, *args[3:], lr0_distribution="uniform") for i in range(300)]
    log_plans = [draw_run(*args[:2], i, *args[3:]) for i in range(300)]
    lrs = np.array([p.lr0 for p in plans])
    # uniform on [1e-5, 1e-3]: mean 5.05e-4 (std of the mean 2.9e-4 / sqrt(300) = 1.7e-5); P(lr0 > 1e-4) = 0.9 / 0.99
    assert lrs.min() >= 1e-5 and lrs.max() <= 1e-3 and abs(lrs.mean() - 5.05e-4) < 6e-5
    assert abs((lrs > 1e-4).mean() - 0.909) < 0.06
    assert [(p.optimizer, p.frequency, p.run_seed) for p in plans] == [
        (p.optimizer, p.frequency, p.run_seed) for p in log_plans]
    with pytest.raises(ConfigError, match="lr0_distribution"):
        draw_run(*args, lr0_distribution="normal")


def test_optimizers_are_block_randomised_per_task():
    optimizers = ["adam", "sgd", "rmsprop"]
    plans = [draw_run("t", 1, i, 0, optimizers, (1e-5, 1e-3), (1, 10)) for i in range(12)]
    blocks = [[p.optimizer for p in plans[k:k + 3]] for k in range(0, 12, 3)]
    assert all(sorted(block) == sorted(optimizers) for block in blocks)  # every block of 3 runs: each once
    assert len({tuple(block) for block in blocks}) > 1  # in a drawn order, not a fixed cycle
    other_task = [draw_run("t", 2, i, 0, optimizers, (1e-5, 1e-3), (1, 10)).optimizer for i in range(12)]
    assert other_task != [p.optimizer for p in plans]  # each task draws its own orders
    # 7 runs: 3 + 3 + 1, so no optimizer is more than one run ahead of another
    counts = [sum(p.optimizer == o for p in plans[:7]) for o in optimizers]
    assert sorted(counts) == [2, 2, 3]


def test_features_are_the_last_three_cycles():
    n = 2  # 2 epochs per cycle, 3 steps per epoch, point 3 = 4 cycles done
    lrs = [1.0, 1.618, 1.0, 0.618]
    history = RunHistory(step_loss=list(range(24)), epoch_steps=[3] * 8, epoch_lr=[lr for lr in lrs for _ in "ab"],
                         eval_loss=[float(e) for e in range(8)], eval_metric=[0.0] * 8, epoch_seconds=[0.0] * 8)
    features = point_features(history, 3, n)
    assert features["cycles"] == 3
    assert features["train_loss"] == list(range(6, 24))
    assert features["val_loss"] == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert features["train_lr"] == [1.618, 1.0, 0.618]
    first = point_features(history, 0, n)
    assert (first["cycles"], first["train_loss"], first["val_loss"], first["train_lr"]) == (1, list(range(6)),
                                                                                             [0.0, 1.0], [1.0])


@pytest.mark.parametrize("replicate, label", [(0.109, 2), (0.115, 1)])
def test_paper_example_full_ordering(replicate, label):
    # P §3.3: (l+, l1, l-) = (0.113, 0.112, 0.111), continued with decrease (2)
    assert corrected_label([0.113, 0.112, 0.111], 2, replicate, 2, "full") == label


def test_full_rule_is_stricter_than_argmin():
    # continued with raise (0); l*+ = 0.1115 swaps raise and keep but decrease stays best
    assert corrected_label([0.113, 0.112, 0.111], 0, 0.1115, 2, "full") == 1
    assert corrected_label([0.113, 0.112, 0.111], 0, 0.1115, 2, "argmin") == 2
    assert corrected_label([0.113, 0.112, 0.111], 1, 0.110, 2, "argmin") == 1


def test_diverged_replicate_and_last_point():
    assert corrected_label([0.1, 0.2, 0.3], 0, INF, 0, "argmin") == 1  # the best diverged on re-run
    assert corrected_label([0.1, 0.2, 0.3], 1, NAN, 0, "full") == 1  # (0, 1, 2) became (0, 2, 1)
    assert corrected_label([0.1, 0.2, 0.3], 1, NAN, 0, "argmin") == 0  # ... but the best stayed
    assert corrected_label([0.3, 0.2, 0.1], -1, NAN, 2, "full") == 2  # last point: nothing to compare


def points_frame():
    rows = [("a", "a-r0", 0, [0.113, 0.112, 0.111], 2, 0.115, 2), ("a", "a-r0", 1, [0.3, 0.2, 0.1], 1, 0.19, 2),
            ("a", "a-r0", 2, [0.1, 0.2, 0.3], -1, NAN, 0), ("b", "b-r0", 0, [0.1, 0.2, 0.3], 0, 0.11, 0)]
    return pd.DataFrame([{"task": t, "run_id": r, "point": p, "branch_loss": b, "chosen": c, "replicate_loss": l,
                          "label_raw": y, "label": y} for t, r, p, b, c, l, y in rows])


def test_a_tie_for_the_best_loss_is_keep():
    assert corrected_label([1.0, 1.0, 1.0], 0, 1.0, 0) == 1  # a dead UNet: soft-Dice loss 1 in every branch
    assert corrected_label([1.0, 1.0, 1.0], -1, NAN, 0) == 1  # ... also at a run's last point (no replicate)
    assert corrected_label([0.5, 0.5, 0.7], 0, 0.5, 0) == 1  # raise and keep tie for the best
    assert corrected_label([0.7, 0.5, 0.5], 1, 0.5, 1) == 1  # keep and decrease tie
    assert corrected_label([0.1, 0.3, 0.3], 0, 0.1, 0) == 0  # a tie behind the best decides nothing: kept
    assert corrected_label([INF, INF, 0.2], 2, 0.2, 2) == 2  # two diverged branches are no tie for the best
    assert corrected_label([1.0, 1.0, 1.0], 0, 1.0, 0, ties="index") == 0  # the raw label: lowest index
    with pytest.raises(ConfigError, match="ties"):
        correct_points(points_frame(), ties="random")


def test_correct_points_and_report():
    corrected = correct_points(points_frame())
    assert corrected.label.tolist() == [1, 2, 0, 0]
    assert corrected.label_raw.tolist() == [2, 2, 0, 0]
    assert len(correct_points(points_frame(), last_point="drop")) == 3
    report = label_report(corrected)
    assert report.loc["a", "changed"] == pytest.approx(1 / 3)
    assert report.loc["ALL", ["raw_0", "raw_1", "raw_2"]].tolist() == [2, 0, 2]
    assert report.loc["ALL", ["corrected_0", "corrected_1", "corrected_2"]].tolist() == [2, 1, 1]
    with pytest.raises(ConfigError):
        correct_points(points_frame(), rule="median")


def test_mix_drivers_groups_the_corrected_labels_by_optimizer_place_and_lr0_third(tmp_path):
    # task a's range [1e-4, 1e-1] spans three decades, so its log thirds are the decades; task b has no range
    rows = [("a", "adam", 2e-4, 0, 0), ("a", "adam", 2e-4, 1, 0), ("a", "sgd", 5e-3, 0, 1), ("a", "sgd", 5e-3, 2, 2),
            ("a", "sgd", 0.05, 0, 0), ("a", "sgd", 0.05, 3, 1), ("b", "adam", 1.0, 0, 2)]
    points = pd.DataFrame([{"task": t, "optimizer": o, "lr0": r, "point": p, "label": y} for t, o, r, p, y in rows])
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text('{"lr_range": [1e-4, 0.1]}')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text("{damaged")  # left out, as a task without a range
    ranges = generated_lr_ranges(tmp_path)
    assert ranges == {"a": [1e-4, 0.1]}
    table = mix_drivers(points, ranges)
    expected = {  # group: (points, raise, keep, decrease), counted by hand from `rows`
        "optimizer adam": (3, 2 / 3, 0, 1 / 3),  # labels 0, 0, 2
        "optimizer sgd": (4, 1 / 4, 2 / 4, 1 / 4),  # 1, 2, 0, 1
        "first call": (4, 2 / 4, 1 / 4, 1 / 4),  # points 0: labels 0, 1, 0, 2
        "second call": (1, 1, 0, 0),
        "later calls": (2, 0, 1 / 2, 1 / 2),  # points 2 and 3: labels 2, 1
        "LR0 lowest third": (2, 1, 0, 0),  # 2e-4: labels 0, 0 (task b left out)
        "LR0 middle third": (2, 0, 1 / 2, 1 / 2),  # 5e-3: 1, 2
        "LR0 highest third": (2, 1 / 2, 1 / 2, 0),  # 0.05: 0, 1
    }
    assert table.index.tolist() == list(expected)
    for group, values in expected.items():
        assert table.loc[group].tolist() == pytest.approx(list(values)), group
    assert equal_thirds_raise(table) == pytest.approx((1 + 0 + 1 / 2) / 3)
    assert equal_thirds_raise(mix_drivers(points, {})) is None  # no ranges: no LR0 rows


# ---- a damaged progress file or branch checkpoint restarts the run ----

class InlinePool:
    """BranchPool's interface, running each job in this process; `stop_after` jobs, then a simulated kill."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after, self.jobs = stop_after, 0

    def run_all(self, jobs, label=""):
        from datagen.branches import run_job

        results = []
        for job in jobs:
            if self.stop_after is not None and self.jobs >= self.stop_after:
                raise KeyboardInterrupt("killed")
            self.jobs += 1
            results.append(run_job(job))
        return results


def datagen_spec(points: int = 2):
    from datagen.generate import lr_range, task_node
    from datagen.procedure import RunSpec, draw_run

    cfg = compose_stage("datagen", "datagen_task=svhn_vgg19bn")
    node = task_node(cfg)
    plan = draw_run(cfg.datagen_task.name, cfg.datagen_task.number, 0, cfg.seed, list(cfg.optimizers),
                    lr_range(cfg), (cfg.frequency_min, cfg.frequency_max))
    return RunSpec(plan, json.dumps(node, sort_keys=True), points, cfg.sgd_momentum,
                   cfg.datagen_task.max_steps_per_epoch, "cpu")


@pytest.mark.parametrize("damage", ["progress.pt", "C-1.pt"])
def test_damaged_datagen_progress_or_checkpoint_restarts_the_run(tmp_path, capsys, damage):
    from datagen.procedure import generate_run

    spec = datagen_spec()
    straight = pd.read_parquet(generate_run(spec, tmp_path / "a" / "run-000.parquet", InlinePool(), log=lambda m: None))
    out = tmp_path / "b" / "run-000.parquet"
    with pytest.raises(KeyboardInterrupt):  # killed after point 0: progress.pt and C-1.pt are on disk
        generate_run(spec, out, InlinePool(stop_after=5), log=lambda m: None)
    work = out.with_suffix(".work")
    assert (work / "progress.pt").is_file() and (work / "C-1.pt").is_file()
    (work / damage).write_bytes((work / damage).read_bytes()[:100])  # truncated
    capsys.readouterr()
    resumed = pd.read_parquet(generate_run(spec, out, InlinePool(), log=lambda m: None))
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and damage in warning[0] and "restarting the run" in warning[0], warning
    pd.testing.assert_frame_equal(resumed, straight)
    assert not work.exists()
