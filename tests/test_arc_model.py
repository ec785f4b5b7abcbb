"""arc_model without TensorFlow: preprocessing math (docs/experiments.md §3), schedule of calls (§5.1-5.2), network and
weight files (§4.1), hybrid loss (§4.2), metrics (§10.1), data and the candidate trainer."""
from __future__ import annotations

import math
import pickle

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from arc_model.controller import ARCSchedule
from arc_model.decider import history_cycles
from arc_model.scheduler import ARCScheduler
from core.schedules import is_decision_epoch
from arc_model.data import build_inputs, holdout_split, load_points
from arc_model.loss import hybrid_loss
from arc_model.metrics import weighted_accuracy
from arc_model.network import PARAMETERS, ARCNet, count_trainable
from arc_model.preprocess import (lr_channel, merge_cycles, offline_input, online_input, train_loss_channel,
                                  val_loss_channel)
from arc_model.synthetic import synthetic_points
from arc_model.candidate_trainer import CandidateTrainer
from arc_model.weights import load_keras_h5, save_keras_h5
from core.errors import ConfigError, DataError, UserError
from core.history import RunHistory
from core.offline_pickle import from_offline_layout
from core.points import validate_points
from core.tasks.digits import DigitsCNN
from core.training import Run


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A random (untrained) candidate as arc.h5: enough to exercise the controller without TF."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("arc") / "arc.h5"
    save_keras_h5(ARCNet(), path)
    return path


# ---- preprocessing (docs/experiments.md §3) -------------------------------------------------------------------
def test_val_channel_is_zscored_nearest_resized_and_zero_padded():
    channel = val_loss_channel([3.0, 1.0, 2.0], cycles=1)
    assert channel.shape == (300,) and np.all(channel[:200] == 0)
    z = (np.array([3.0, 1.0, 2.0]) - 2.0) / np.std([3.0, 1.0, 2.0])
    runs = [34, 33, 33]  # cv2 INTER_NEAREST 3 -> 100: floor(i * 3 / 100)
    assert np.allclose(channel[200:], np.repeat(z, runs), atol=1e-6)
    assert np.all(val_loss_channel([], cycles=0) == 0)  # no eval data: zeros (docs/experiments.md §5.3)
    assert np.all(val_loss_channel([0.5] * 6, cycles=2) == 0)  # constant input: z-score floored std


def test_lr_channel_divides_by_oldest_and_pads_ones():
    channel = lr_channel([0.01, 0.01618, 0.01], cycles=3)
    assert np.allclose(channel, np.repeat([1.0, 1.618, 1.0], 100))
    short = lr_channel([0.2], cycles=1)
    assert np.all(short == 1.0)


def test_train_channel_repo_resizes_linearly_before_zscore_paper_after():
    losses = np.linspace(2.0, 1.0, 37) ** 2
    repo = train_loss_channel(losses, 2, "repo")
    paper = train_loss_channel(losses, 2, "paper")
    assert np.all(repo[:100] == 0) and np.all(paper[:100] == 0)
    assert abs(repo[100:].mean()) < 1e-5 and abs(repo[100:].std() - 1) < 1e-4  # z-scored after the resize
    assert len(np.unique(paper[100:])) == 37  # nearest: only original (z-scored) values
    assert len(np.unique(repo[100:])) > 37  # linear: interpolated values
    assert not np.allclose(repo, paper)


def test_offline_input_of_an_authors_pickle_entry_is_zscore_then_pad():
    """train_arc.py reads train_loss already resized to 100k: our INTER_LINEAR resize must be the identity."""
    rng = np.random.default_rng(0)
    train = rng.uniform(0.5, 2.0, 200).astype(np.float32)
    x = offline_input(train, rng.uniform(1, 2, 8), [1e-3, 2e-3])
    z = (train - train.mean()) / train.std()
    assert np.allclose(x[100:, 0], z, atol=1e-6) and np.all(x[:100, 0] == 0)
    assert x.shape == (300, 3) and x.dtype == np.float32


def test_merge_cycles_counts_unseen_and_keeps_fe_zero_lr_quirk():
    assert merge_cycles([None, [1.0, 2.0], [3.0]]) == ([1.0, 2.0, 3.0], 1)
    assert merge_cycles([None, 0.0, 0.1]) == ([0.1], 2)  # `elif item:` drops an LR of exactly 0.0


# ---- when and from what the controller decides (docs/experiments.md §5.1-5.2) ----------------------------------
def test_decision_epochs_match_the_logged_call_counts():
    assert [e for e in range(1, 31) if is_decision_epoch(e, 3)] == [4, 7, 10, 13, 16, 19, 22, 25, 28]
    assert sum(is_decision_epoch(e, 3) for e in range(1, 99)) == 32  # PTB: 98 epochs
    assert [e for e in range(1, 6) if is_decision_epoch(e, 1)] == [2, 3, 4, 5]


def test_history_cycles_keep_the_last_three_cycles_oldest_first():
    history = RunHistory(step_loss=[float(i) for i in range(24)], epoch_steps=[2] * 12,
                         epoch_lr=[0.1 * e for e in range(1, 13)], eval_loss=[10.0 + e for e in range(1, 13)])
    train, val, lrs = history_cycles(history, epoch=4, frequency=3)
    assert train[:2] == [None, None] and train[2] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and lrs[2] == pytest.approx(0.3)
    train, val, lrs = history_cycles(history, epoch=13, frequency=3)  # cycles 2..4 = epochs 4..12
    assert train[0][0] == 6.0 and train[2][-1] == 23.0
    assert val == [[14.0, 15.0, 16.0], [17.0, 18.0, 19.0], [20.0, 21.0, 22.0]]
    assert lrs == pytest.approx([0.6, 0.9, 1.2])
    assert history_cycles(history, 13, 3, use_val_loss=False)[1] == [None, None, None]


def test_schedule_in_a_core_run_decides_at_4_and_7_and_logs(weights, tmp_path):
    schedule = ARCSchedule(str(weights))
    run = Run(DigitsCNN(width=4, n_train=64, batch_size=32), "adam", 1e-3, schedule, seed=0)
    run.open_log(tmp_path / "log.txt")
    run.train(7)
    run.finish_log(0.0)
    assert [e for e, _ in schedule.decisions] == [4, 7]
    lr = 1e-3
    for e, m in schedule.decisions:
        lr = float(np.float32(lr * m))
        assert run.history.epoch_lr[e - 1] == lr
    assert open(tmp_path / "log.txt").read().count("multiplying lr by") == 2


def test_schedule_decides_as_the_scheduler_fed_by_a_loop(weights):
    """ARCSchedule (Run's wrapper) and ARCScheduler fed step by step by a plain loop take the same decision."""
    rng = np.random.default_rng(1)
    losses, evals = np.exp(-np.arange(90) / 30 + rng.normal(0, 0.1, 90)), rng.uniform(1, 2, 9)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = ARCScheduler(optimizer, weights)
    history = RunHistory()  # what core.training.Run records of the same run
    for e in range(9):
        history.epoch_lr.append(optimizer.param_groups[0]["lr"])
        for loss in losses[10 * e:10 * e + 10]:
            scheduler.record(torch.tensor(loss))
            history.step_loss.append(float(loss))
        history.epoch_steps.append(10)
        history.eval_loss.append(float(evals[e]))
        scheduler.step(evals[e])
    schedule = ARCSchedule(str(weights))
    assert schedule.on_epoch_begin(10, history, history.epoch_lr[-1]) == optimizer.param_groups[0]["lr"]
    assert schedule.decisions == scheduler.decisions and len(schedule.decisions) == 3
    assert schedule.log_lines() == [f"multiplying lr by {scheduler.last_multiplier}"]


def test_scheduler_without_eval_data_feeds_a_zero_val_channel(weights, monkeypatch):
    import arc_model.decider

    seen = []

    def spy(*args, **kwargs):
        seen.append(online_input(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(arc_model.decider, "online_input", spy)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = ARCScheduler(optimizer, weights, frequency=1)
    for loss in (1.0, 0.9, 0.8):
        scheduler.record(loss)
    scheduler.step()
    assert scheduler.get_last_lr()[0] in {float(np.float32(0.1 * m)) for m in (1.618, 1.0, 0.618)}
    assert len(seen) == 1 and np.all(seen[0][:, 1] == 0) and np.any(seen[0][:, 0] != 0)


def test_schedule_resumes_from_its_state_and_from_a_checkpoint_of_before_the_wrapper(weights):
    """Run's checkpoint holds the scheduler's state_dict; an older checkpoint ({"decisions"} only) is replayed from
    the Run's history. Both then take the decision an uninterrupted schedule takes."""
    rng = np.random.default_rng(2)
    history = RunHistory(step_loss=list(rng.uniform(0.5, 2, 60)), epoch_steps=[5] * 12, epoch_lr=[1e-2] * 12,
                         eval_loss=list(rng.uniform(1, 2, 12)))
    whole = ARCSchedule(str(weights))
    lrs = [whole.on_epoch_begin(e, history, 1e-2) for e in range(1, 13)]
    resumed, replayed = ARCSchedule(str(weights)), ARCSchedule(str(weights))
    part = ARCSchedule(str(weights))
    for e in range(1, 8):
        part.on_epoch_begin(e, history, 1e-2)
    resumed.load_state_dict(part.state_dict())
    replayed.load_state_dict({"decisions": [list(d) for d in part.decisions]})
    for schedule in (resumed, replayed):
        assert [schedule.on_epoch_begin(e, history, 1e-2) for e in range(8, 13)] == lrs[7:]
        assert schedule.decisions == whole.decisions


def test_bad_weights_and_settings_fail_before_training(tmp_path, weights):
    with pytest.raises(DataError, match="not found: .*missing.h5"):
        ARCSchedule(str(tmp_path / "missing.h5"))
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(DataError, match="bad.h5"):
        ARCSchedule(str(tmp_path / "bad.h5"))
    with pytest.raises(ConfigError, match="frequency"):
        ARCSchedule(str(weights), frequency=0)
    with pytest.raises(ConfigError, match="preprocessing"):
        ARCSchedule(str(weights), preprocessing="nearest")


# ---- network and weight files (docs/experiments.md §4.1) -------------------------------------------------------
def test_network_has_keras_parameter_count_and_h5_round_trip_is_exact(tmp_path):
    torch.manual_seed(3)
    model = ARCNet()
    assert count_trainable(model) == PARAMETERS == 79_043
    assert float(model.lstm1.bias_ih_l0[64:128].min()) == 1.0  # Keras unit_forget_bias
    save_keras_h5(model, tmp_path / "arc.h5")
    with h5py.File(tmp_path / "arc.h5") as f:
        assert [n.decode() for n in f.attrs["layer_names"]][4] == "lstm"
        assert f["lstm"]["lstm/lstm_cell/kernel:0"].shape == (64, 256)
        assert sum(d.size for d in _datasets(f)) == 79_043
    again = load_keras_h5(tmp_path / "arc.h5")
    x = torch.randn(4, 300, 3)
    assert torch.equal(model.probabilities(x), again.probabilities(x))


def _datasets(group):
    out = []
    group.visititems(lambda _, obj: out.append(obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_h5_with_wrong_shapes_is_rejected_naming_the_file(tmp_path):
    save_keras_h5(ARCNet(), tmp_path / "arc.h5")
    with h5py.File(tmp_path / "arc.h5", "r+") as f:
        del f["dense_1"]["dense_1/bias:0"]
        f["dense_1"].create_dataset("dense_1/bias:0", data=np.zeros(4, np.float32))
    with pytest.raises(DataError, match="arc.h5"):
        load_keras_h5(tmp_path / "arc.h5")


def test_loading_weights_restores_every_parameter_and_leaves_the_global_rng(tmp_path):
    torch.manual_seed(3)
    saved = ARCNet()
    save_keras_h5(saved, tmp_path / "arc.h5")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    loaded = load_keras_h5(tmp_path / "arc.h5")
    assert torch.equal(torch.rand(3), expected)  # the seeded stream did not move
    for (name, a), (_, b) in zip(saved.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert not loaded.lstm1.bias_hh_l0.requires_grad and not loaded.lstm2.bias_hh_l0.requires_grad


# ---- hybrid loss (docs/experiments.md §4.2) and metrics (docs/experiments.md §10.1) --------------------------------------------
def test_hybrid_loss_is_half_ce_half_raise_vs_decrease_bce():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0], [-1.0, 0.0, 1.0]])
    labels = torch.tensor([0, 1, 2])
    losses = hybrid_loss(logits, labels)
    p = torch.softmax(logits, 1)
    ce = -torch.log(p[[0, 1, 2], labels]).mean()
    bce = -(torch.log(p[0, 0]) + torch.log(1 - p[2, 0])) / 2  # the keep sample is left out
    assert torch.isclose(losses["ce"], ce) and torch.isclose(losses["bnce_0vs2"], bce)
    assert torch.isclose(losses["total_loss"], 0.5 * ce + 0.5 * bce)
    assert float(hybrid_loss(logits, torch.tensor([1, 1, 1]))["bnce_0vs2"]) == 0.0


def test_hybrid_loss_per_class_on_a_uniform_softmax():
    """Zero logits: every class has p = 1/3. CE_i = ln 3 = 1.0986123; raise's BCE -ln(1/3) = 1.0986123, decrease's
    -ln(2/3) = 0.4054651, keep has none. Per class: raise 0.5 * 1.0986123 + 0.5 * 1.0986123 = 1.0986123, keep
    0.5 * 1.0986123 = 0.5493061, decrease 0.5 * 1.0986123 + 0.5 * 0.4054651 = 0.7520387 (two samples: sum 1.5040774)."""
    from arc_model.loss import hybrid_sums_by_class
    sums = hybrid_sums_by_class(torch.zeros(4, 3), torch.tensor([0, 1, 2, 2]))
    assert sums["raise"] == (pytest.approx(1.0986123), 1) and sums["keep"] == (pytest.approx(0.5493061), 1)
    assert sums["decrease"] == (pytest.approx(1.5040774), 2)


def test_weighted_accuracy_uses_the_table5_reward_penalty_matrix():
    labels = np.array([0, 0, 1, 2])
    predicted = np.array([0, 2, 1, 1])
    # diagonal: R00*1 + R11*1 = 3 + 1; all: + R02*1 (raise->decrease, 3) + R21*1 (decrease->keep, 1)
    assert weighted_accuracy(labels, predicted) == pytest.approx(4 / 8)


# ---- data, synthetic fixture, trainer ------------------------------------------------------------
def test_offline_pickle_layout_reads_through_one_function(tmp_path):
    data = {"train_loss": [np.ones(100), np.arange(200.0)], "val_loss": [np.ones(3), np.arange(4.0)],
            "train_lr": [np.array([1e-3]), np.array([1e-3, 2e-3])], "label": [0, 2]}
    points = from_offline_layout(data, "offline_data.pkl")
    inputs, labels = build_inputs(points)
    assert inputs.shape == (2, 300, 3) and labels.tolist() == [0, 2]
    with pytest.raises(DataError, match="keys"):
        from_offline_layout({"train_loss": []}, "offline_data.pkl")
    # arc_model reads the authors' pickle through the same function, and only with the trust_pickle opt-in
    pkl = tmp_path / "offline_data.pkl"
    pkl.write_bytes(pickle.dumps(data))
    with pytest.raises(UserError, match="trust_pickle"):
        load_points(pkl)
    loaded = load_points(pkl, trust_pickle=True)
    assert np.array_equal(build_inputs(loaded)[0], inputs) and loaded.label.tolist() == [0, 2]


def test_synthetic_points_follow_the_points_format_and_split_is_disjoint():
    points = synthetic_points(60, seed=1)
    validate_points(points, "synthetic")
    assert (points.task == "synthetic").all() and set(points.label) <= {0, 1, 2}
    last = points.groupby("run_id").point.transform("max") == points.point
    assert (points.chosen[last] == -1).all() and points.replicate_loss[~last].notna().all()
    train, held = holdout_split(points, 0.3, seed=0, by_run=False)
    assert len(held) == 18 and not set(train) & set(held)
    train, held = holdout_split(points, 0.5, seed=0, by_run=True)
    assert not set(points.run_id.iloc[train]) & set(points.run_id.iloc[held])


def test_candidate_training_resumes_bit_exactly(tmp_path):
    inputs, labels = build_inputs(synthetic_points(80, seed=2))
    train_idx, held_idx = np.arange(60), np.arange(60, 80)
    straight = CandidateTrainer(inputs, labels, train_idx, held_idx, seed=5, batch_size=32)
    straight.train(2)
    first = CandidateTrainer(inputs, labels, train_idx, held_idx, seed=5, batch_size=32)
    first.train(1)
    first.save(tmp_path / "checkpoint.pt")
    torch.manual_seed(12345)  # disturb the global RNG between save and restore
    resumed = CandidateTrainer(inputs, labels, train_idx, held_idx, seed=99, batch_size=32)
    resumed.restore(tmp_path / "checkpoint.pt")
    assert resumed.epoch == 1
    resumed.train(1)
    assert all(torch.equal(a, b) for a, b in zip(straight.model.state_dict().values(),
                                                 resumed.model.state_dict().values()))
    assert pd.DataFrame(straight.rows).equals(pd.DataFrame(resumed.rows))
    assert set(straight.rows[-1]) >= {"accuracy", "mcc", "val_loss", "calibration_error", "weighted_accuracy"}
    assert all(math.isfinite(straight.rows[-1][k]) for k in ("accuracy", "val_loss", "weighted_accuracy"))
    assert {f"{side}_hybrid_{c}" for side in ("train", "held") for c in ("raise", "keep", "decrease")} <= set(
        straight.rows[-1])


def test_paper_size_batch_trains_two_steps():
    """The paper profile's model and batch (128 x 300 x 3) on stand-in random inputs."""
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(256, 300, 3)).astype(np.float32)
    labels = rng.integers(0, 3, 256)
    trainer = CandidateTrainer(inputs, labels, np.arange(256), np.array([], dtype=int), seed=1, batch_size=128)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    row = trainer.train_epoch()
    assert trainer.global_step == 2 and math.isfinite(row["train_total_loss"])
    changed = [not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters())]
    assert sum(changed) == len(before) - 2  # everything but the two frozen LSTM bias_hh
