"""The training core: exact resume, checkpoints of plain values, divergence handling, schedule hooks, recorded
history, and the GPU path (step losses read per log interval, CUDA RNG in checkpoints, data on the device, speed
options)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import CONFIGS
from core.history import RunHistory
from core.optim import optimizer_factory
from core.schedules import Schedule
from core.tasks.digits import DigitsCNN
from core.training import Run, data_to_device, load_checkpoint, run_options
from core.errors import CheckpointError, ConfigError


def small_task():
    return DigitsCNN(width=4, n_train=200, batch_size=32)


def params(run):
    return torch.cat([p.detach().flatten() for p in run.model.parameters()])


class Dropout(DigitsCNN):
    """Digits CNN with dropout so the global torch RNG matters during training."""

    def build_model(self):
        return torch.nn.Sequential(torch.nn.Dropout(0.3), super().build_model())


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_resume_is_bit_exact(tmp_path, optimizer):
    task = Dropout(width=4, n_train=200, batch_size=32)
    factory = optimizer_factory(optimizer, momentum=0.9 if optimizer == "sgd" else 0.0)
    straight = Run(task, factory, 0.01, seed=3)
    straight.train(5)

    first = Run(task, factory, 0.01, seed=3)
    first.train(2)
    first.save(tmp_path / "ck.pt")
    torch.manual_seed(12345)  # disturb every global RNG between save and restore
    resumed = Run(task, factory, 0.01, seed=99)
    resumed.restore(tmp_path / "ck.pt")
    resumed.train(3)

    assert torch.equal(params(straight), params(resumed))
    assert straight.history.step_loss == resumed.history.step_loss
    assert straight.history.eval_loss == resumed.history.eval_loss
    assert resumed.global_step == straight.global_step == 5 * 7


def test_history_records_every_step_eval_and_lr():
    run = Run(small_task(), "adam", 1e-3, seed=0)
    history = run.train(3)
    assert history.epoch_steps == [7, 7, 7]  # 200 samples / batch 32, last partial batch kept
    assert len(history.step_loss) == 21
    assert len(history.eval_loss) == len(history.eval_metric) == len(history.epoch_lr) == 3
    assert history.losses_of_epochs(2, 3) == history.step_loss[7:]
    frame = history.epoch_frame()
    assert list(frame.epoch) == [1, 2, 3] and frame.lr.tolist() == [1e-3] * 3


def test_divergence_stops_cleanly_and_keeps_history():
    run = Run(small_task(), "sgd", 1e30, seed=0)
    history = run.train(5)
    assert history.diverged
    assert not math.isfinite(history.step_loss[-1]) or not math.isfinite(history.eval_loss[-1])
    assert history.epochs <= 5 and len(history.step_loss) >= 1
    assert history.step_frame().shape[0] == len(history.step_loss)


class Recorder(Schedule):
    per_step = True

    def __init__(self):
        self.epoch_calls, self.step_calls = [], []

    def on_epoch_begin(self, epoch, history, lr):
        self.epoch_calls.append((epoch, history.epochs, len(history.step_loss)))
        return lr * 0.5 if epoch == 2 else lr

    def on_step_begin(self, step, epoch, lr):
        self.step_calls.append(step)
        return lr


def test_schedule_hooks_see_history_and_set_lr():
    schedule = Recorder()
    run = Run(small_task(), "adam", 1e-3, schedule=schedule, seed=0)
    history = run.train(3)
    # epoch e begins after e-1 evaluated epochs and all their steps
    assert schedule.epoch_calls == [(1, 0, 0), (2, 1, 7), (3, 2, 14)]
    assert schedule.step_calls == list(range(1, 22))
    assert history.epoch_lr == [1e-3, 5e-4, 5e-4]


def test_unreadable_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_history_roundtrip():
    h = RunHistory(step_loss=[1.0, 2.0], epoch_steps=[2], epoch_lr=[0.1], eval_loss=[0.5], eval_metric=[0.9],
                   epoch_seconds=[0.1])
    assert RunHistory.from_state_dict(h.state_dict()) == h
    assert h.best_metric("max") == (0.9, 1)


def test_checkpoints_hold_plain_values_and_restore_numpy_rng_exactly(tmp_path):
    run = Run(DigitsCNN(n_train=64), "adam", 1e-3, seed=0, max_steps_per_epoch=2)
    run.train(1)
    np.random.seed(5)
    np.random.random(3)
    expected = np.random.random(4)
    np.random.seed(5)
    np.random.random(3)
    run.save(tmp_path / "ck.pt")
    state = torch.load(tmp_path / "ck.pt", weights_only=True)  # plain: no numpy object inside
    assert isinstance(state["rng"]["numpy"]["key"], list)
    np.random.seed(99)
    Run(DigitsCNN(n_train=64), "adam", 1e-3, seed=1).restore(tmp_path / "ck.pt")
    assert np.array_equal(np.random.random(4), expected)


# ---- the GPU path: step losses read per log interval, CUDA RNG in checkpoints, data on the device, speed options ----

def test_losses_read_per_log_interval_give_the_same_run_and_log(tmp_path):
    """The GPU path (step losses kept on the device, read at log steps and epoch ends) forced on CPU: the same
    history, weights and FE log as reading every step."""
    runs = []
    for name, sync in (("each", True), ("deferred", False)):
        run = Run(small_task(), "adam", 1e-3, seed=0, log_steps=3)
        run.sync_each_step = sync
        run.open_log(tmp_path / f"{name}.txt")
        run.train(3)
        run.finish_log(0.0)
        runs.append(run)
    each, deferred = runs
    assert each.history.step_loss == deferred.history.step_loss and len(each.history.step_loss) == 21
    assert all(isinstance(v, float) for v in deferred.history.step_loss)
    assert each.history.eval_loss == deferred.history.eval_loss
    assert torch.equal(params(each), params(deferred))
    strip = lambda text: [ln.split("steps/sec")[0] for ln in text.splitlines() if "epoch_time" not in ln]  # noqa: E731
    assert strip((tmp_path / "each.txt").read_text()) == strip((tmp_path / "deferred.txt").read_text())


def test_divergence_is_noticed_at_the_next_log_step_on_the_gpu_path():
    run = Run(small_task(), "sgd", 1e30, seed=0, log_steps=5)
    run.sync_each_step = False
    history = run.train(5)
    assert history.diverged and history.epochs <= 5
    assert not all(math.isfinite(v) for v in history.step_loss)
    assert history.step_frame().shape[0] == len(history.step_loss) == run.global_step  # every trained step kept
    assert run.global_step == 1 or run.global_step % 5 == 0 or run.global_step % 7 == 0  # a log step or epoch end


def test_cuda_rng_state_is_saved_and_restored(tmp_path, monkeypatch):
    states = [torch.arange(4, dtype=torch.uint8), torch.arange(4, 8, dtype=torch.uint8)]
    restored = []
    run = Run(small_task(), "adam", 1e-3, seed=0)
    run.train(1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, as far as save/restore look
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda new: restored.append(new))
    run.save(tmp_path / "ck.pt")
    assert [s.tolist() for s in torch.load(tmp_path / "ck.pt", weights_only=False)["rng"]["cuda"]] == \
        [s.tolist() for s in states]
    Run(small_task(), "adam", 1e-3, seed=1).restore(tmp_path / "ck.pt")
    assert [s.tolist() for s in restored[0]] == [s.tolist() for s in states]


def test_cpu_checkpoints_hold_no_cuda_state(tmp_path):
    run = Run(small_task(), "adam", 1e-3, seed=0)
    if not torch.cuda.is_available():
        assert "cuda" not in run.state_dict()["rng"]


def test_in_memory_datasets_move_to_the_device_once():
    task = DigitsCNN(width=4, n_train=64, batch_size=32, device="meta")  # a non-CPU device that exists everywhere
    data_to_device(task)
    assert all(t.device.type == "meta" for t in (*task.train_data, *task.eval_data))
    cpu = small_task()
    before = cpu.train_data
    data_to_device(cpu)
    assert cpu.train_data is before


def test_speed_options_come_from_the_profile_and_default_to_fp32():
    import experiments.config  # noqa: F401  (registers the benchmark schemas)

    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        paper = compose("benchmark", ["profile=paper"])
        fast = compose("benchmark", ["profile=paper", "profile.precision=bf16", "profile.channels_last=true",
                                     "profile.compile=true"])
    assert run_options(paper.profile) == {"precision": "fp32", "channels_last": False, "compile": False,
                                          "compile_mode": "default"}
    assert run_options(fast.profile) == {"precision": "bf16", "channels_last": True, "compile": True,
                                         "compile_mode": "default"}
    with pytest.raises(ConfigError, match="precision"):
        Run(small_task(), "adam", 1e-3, precision="fp16")
    with pytest.raises(ConfigError, match="compile_mode must be one of default, reduce-overhead"):
        Run(small_task(), "adam", 1e-3, compile=True, compile_mode="reduce_overhead")


def test_bf16_and_channels_last_train_and_compile_keeps_checkpoint_keys(monkeypatch):
    run = Run(small_task(), "adam", 1e-3, seed=0, precision="bf16", channels_last=True, max_steps_per_epoch=2)
    history = run.train(1)
    assert len(history.step_loss) == 2 and all(math.isfinite(v) for v in history.step_loss)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **mode: compiled.append((model, mode)) or model)
    run = Run(small_task(), "adam", 1e-3, seed=0, compile=True)
    assert compiled == [(run.model, {})] and run.forward_model is run.model
    graphs = Run(small_task(), "adam", 1e-3, seed=0, compile=True, compile_mode="reduce-overhead")
    assert compiled[1] == (graphs.model, {"mode": "reduce-overhead"})
    assert not any(k.startswith("_orig_mod") for k in run.state_dict()["model"])
