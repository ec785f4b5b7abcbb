"""bench.bench_gpu (`make bench-gpu`): on a machine without a GPU, and its stand-in tasks."""
from __future__ import annotations

import math

import pytest
import torch

from core.training import Run


def test_bench_gpu_without_a_gpu_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from bench import bench_gpu

    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    bench_gpu.main()
    assert "no GPU" in capsys.readouterr().out
    assert not bench_gpu.results_path().exists()


@pytest.mark.parametrize("name", ["cifar10", "mscoco", "ptb", "svhn_proxy"])
def test_bench_gpu_standin_tasks_take_one_step(name):
    """A 1-step smoke of each stand-in on CPU, at a tiny batch (bench-gpu times them on a GPU at the real sizes)."""
    from bench.bench_gpu import StandinDetection, standin_task

    if name == "mscoco":
        from core.optim import optimizer_factory

        task, optimizer, lr0 = StandinDetection(1, 1, image_size=64, device="cpu"), optimizer_factory("sgd"), 0.01
    else:
        task, optimizer, lr0 = standin_task(name, "cpu", steps=1, batch_size=2)
    history = Run(task, optimizer, lr0, seed=0, max_steps_per_epoch=1).train(1)
    assert history.epoch_steps == [1] and math.isfinite(history.step_loss[0])
