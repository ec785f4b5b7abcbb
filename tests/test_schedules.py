"""LR sequences of the paper's schedules pinned to FastEstimator 1.7.0's functions and to docs/experiments.md §7.4 values."""
from __future__ import annotations

import math

import pytest

from core.errors import ConfigError
from core.history import RunHistory
from core.schedules import CosineDecay, ExponentialDecay, LinearRamp, SuperConvergence, cosine_decay
from core.schedules_adaptive import GreedyLR, ReduceOnPlateau

fe_schedule = pytest.importorskip("fastestimator.schedule.lr_schedule")


def epoch_lrs(schedule, lr0, epochs, history=None):
    schedule.on_train_begin(lr0, 0, epochs)
    return [schedule.on_epoch_begin(e, history or RunHistory(), lr0) for e in range(1, epochs + 1)]


@pytest.mark.parametrize("lr0", [1e-2, 1e-3, 1e-4, 5e-3, 1.0])
@pytest.mark.parametrize("epochs", [30, 98])
def test_cd_matches_fe_cosine_decay(lr0, epochs):
    ours = epoch_lrs(CosineDecay(), lr0, epochs)
    fe = [fe_schedule.cosine_decay(e, cycle_length=epochs, init_lr=lr0) for e in range(1, epochs + 1)]
    assert ours == pytest.approx(fe, rel=1e-12)


def test_cd_logged_values():
    lrs = epoch_lrs(CosineDecay(), 0.01, 30)
    assert f"{lrs[0]:.9f}" == "0.009972612"  # docs/experiments.md §7.4 [L]
    assert lrs[-1] == pytest.approx(1e-6)


@pytest.mark.parametrize("t0, epochs", [(10, 30), (14, 98), (5, 15), (4, 28)])
def test_ccd_matches_fe_sgdr(t0, epochs):
    ours = epoch_lrs(CosineDecay(cycle_length=t0, cycle_multiplier=2), 0.1, epochs)
    fe = [fe_schedule.cosine_decay(e, cycle_length=t0, init_lr=0.1, cycle_multiplier=2) for e in range(1, epochs + 1)]
    assert ours == pytest.approx(fe, rel=1e-12)
    ends = [t0 * (2**k - 1) for k in range(1, 4) if t0 * (2**k - 1) <= epochs]
    assert all(ours[e - 1] == pytest.approx(1e-6) for e in ends)  # every cycle ends at min_lr
    assert ours[ends[0]] == pytest.approx(cosine_decay(1, 2 * t0, 0.1))  # restart at cos(pi / T)


def test_ed_sequence():
    assert epoch_lrs(ExponentialDecay(0.9), 0.01, 3) == pytest.approx([0.01, 0.009, 0.0081])
    assert epoch_lrs(ExponentialDecay(0.96), 1.0, 98)[-1] == pytest.approx(0.96**97)


@pytest.mark.parametrize("lr0, lr_max, a, steps, first", [(0.01, 0.198, 13, 391, "0.010036986"),
                                                          (0.001, 0.01, 13, 1500, "0.0010004615"),
                                                          (1.0, 23.2, 45, 345, "1.0014299")])
def test_sc_phases_and_logged_first_step(lr0, lr_max, a, steps, first):
    total = 98 if a == 45 else 30
    sc = SuperConvergence(lr_max, a, f=lr_max / lr0)
    sc.on_train_begin(lr0, steps, total)
    lr = [sc.on_step_begin(s, 1, lr0) for s in range(1, steps * total + 1)]
    assert lr[0] == pytest.approx(float(first), rel=1e-7)  # logged float32 value [L]
    peak = steps * a
    assert lr[peak - 1] == pytest.approx(lr_max)  # warm-up reaches LRmax at S*a
    assert lr[2 * peak - 1] == pytest.approx(lr0)  # cool-down back to LR0 at S*2a
    assert lr[-1] == pytest.approx(0.0, abs=1e-12)  # annihilation to 0 at S*T
    assert all(x <= y for x, y in zip(lr[:peak - 1], lr[1:peak]))
    assert all(x >= y for x, y in zip(lr[peak:], lr[peak + 1:]))


def test_sc_rejects_bad_phase():
    with pytest.raises(ConfigError, match="phase_epochs"):
        SuperConvergence(0.2, 15, f=20.0).on_train_begin(0.01, 10, 30)


def test_range_test_ramp_is_linear_from_zero():
    ramp = LinearRamp(3.0, 5000)
    assert [ramp.on_step_begin(s, 1, 0.0) for s in (1, 330, 5000)] == pytest.approx([6e-4, 0.198, 3.0])


def history_with(eval_losses):
    n = len(eval_losses)
    return RunHistory(step_loss=[1.0] * n, epoch_steps=[1] * n, epoch_lr=[0.1] * n, eval_loss=list(eval_losses),
                      eval_metric=[0.0] * n, epoch_seconds=[0.0] * n)


def test_greedy_raises_on_improvement_and_lowers_on_stall():
    greedy = GreedyLR(frequency=3)
    improving, stalled = history_with([3.0, 2.5, 2.0]), history_with([2.0, 2.5, 2.4])
    assert greedy.on_epoch_begin(2, improving, 0.1) == 0.1  # not a call epoch
    assert greedy.on_epoch_begin(4, improving, 0.1) == pytest.approx(0.1618)
    assert greedy.log_lines() == ["multiplying lr by 1.618"]
    assert greedy.on_epoch_begin(4, stalled, 0.1) == pytest.approx(0.0618)
    assert greedy.on_epoch_begin(7, history_with([3, 3, 2.0, 2, 2, math.nan]), 0.1) == pytest.approx(0.0618)
    assert GreedyLR(frequency=1).on_epoch_begin(2, history_with([1.0]), 0.1) == 0.1  # nothing to compare yet


def test_plateau_halves_after_patience_and_resumes_exactly():
    plateau = ReduceOnPlateau(factor=0.5, patience=2)
    losses, lr = [], 0.1
    for epoch, loss in enumerate([1.0, 0.9, 0.9, 0.9, 0.9], start=1):
        lr = plateau.on_epoch_begin(epoch, history_with(losses), lr)
        losses.append(loss)
    assert lr == 0.1  # 2 bad epochs so far: patience not exceeded
    state = plateau.state_dict()
    resumed = ReduceOnPlateau(factor=0.5, patience=2)
    resumed.load_state_dict(state)
    assert resumed.on_epoch_begin(6, history_with(losses), lr) == plateau.on_epoch_begin(6, history_with(losses), lr) == 0.05
