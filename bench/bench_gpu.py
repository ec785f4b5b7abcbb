"""`python -m bench gpu` (`make bench-gpu`): training steps per second of the paper's tasks on this GPU.

Each task runs in the project's own loop (core.training.Run: forward, backward, optimizer step, step losses kept
on the device) on stand-in random tensors of the paper's shapes, already on the GPU:
  * cifar10: ResNet9 (width 64) + the pad/crop/flip/cutout augmentation, Adam, batch 128 of 3x32x32;
  * mscoco:  RetinaNet-ResNet50-FPN (P3-P7, 90 classes), SGD momentum 0.9, batch 32 at 256x256, 1-3 boxes per
             image (the data loader, which decodes JPEGs in worker processes on a real run, is not timed);
  * ptb:     Embedding 300 -> LSTM 600 -> Dense 10,000, SGD momentum 0.9, batch 128 of 20 tokens;
  * svhn_proxy: the selection proxy's WRN-28-2, Adam, batch 128 of 3x32x32 (no logged rate: `make plan` uses it).
Each under two option sets: `fp32` (the authors' computation, the default) and `fast` (profile.precision=bf16,
profile.channels_last=true, profile.compile=true). Prints steps/s and the ratio to the authors' logged rates
(docs/experiments.md §9.2 `steps/sec`: CIFAR10 58.9, MSCOCO 4.07, PTB 37.9) and writes them to
artifacts/bench/gpu.json (under $ARC_REPRO_ROOT), which `make plan` reads for its GPU-hours.
BENCH_GPU_SETS=fp32 (or fast) times one set only. Without a GPU it says so and exits 0 without timing anything.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

import torch

AUTHORS_STEPS_PER_S = {"cifar10": 58.9, "mscoco": 4.07, "ptb": 37.9}  # the authors' logged training rates
TARGETS_H200 = {"cifar10": 400, "mscoco": 30, "ptb": 250}  # issue #9: steps/s on one H200
OPTION_SETS = {"fp32": {"precision": "fp32", "channels_last": False, "compile": False},
               "fast": {"precision": "bf16", "channels_last": True, "compile": True}}
TIMED_STEPS = {"cifar10": 391, "mscoco": 60, "ptb": 345, "svhn_proxy": 300}  # one timed epoch of each
REPO = Path(__file__).resolve().parents[1]


def results_path() -> Path:
    return Path(os.environ.get("ARC_REPRO_ROOT") or REPO) / "artifacts" / "bench" / "gpu.json"


def options_key(precision: str = "fp32", channels_last: bool = False, compile: bool = False, **_) -> str:
    """The option set a profile's speed options match (`make plan` picks the measurement by it)."""
    return "fp32" if (precision, channels_last, compile) == ("fp32", False, False) else "fast"


def _no_eval(task):
    """Time training only: the stand-in's evaluation returns at once."""
    task.evaluate = lambda model: (0.0, 0.0)
    return task


def standin_task(name: str, device: str = "cuda", steps: int = 1, batch_size: int | None = None):
    """(task, optimizer factory, LR0) of one paper task on random tensors of its real shapes, `steps` batches."""
    from core.optim import optimizer_factory

    generator = torch.Generator().manual_seed(0)
    if name == "cifar10":
        from experiments.tasks.images import AugmentedImageTask

        b = batch_size or 128
        x, y = torch.randn(steps * b, 3, 32, 32, generator=generator), torch.randint(0, 10, (steps * b,), generator=generator)
        task = AugmentedImageTask((x, y), (x[:b], y[:b]), b, width=64, pad=4, hole=8, device=device)
        return _no_eval(task), optimizer_factory("adam"), 1e-3
    if name == "svhn_proxy":
        from selection.proxy import ProxyTask

        b = batch_size or 128
        x = torch.randint(0, 256, (steps * b, 3, 32, 32), generator=generator, dtype=torch.uint8)
        y = torch.randint(0, 10, (steps * b,), generator=generator)
        task = ProxyTask((x, y), (x[:b], y[:b]), b, depth=28, width=2, hole=8, device=device)
        return _no_eval(task), optimizer_factory("adam"), 1e-3
    if name == "ptb":
        from experiments.tasks.language import LanguageModelTask

        b = batch_size or 128
        chunks = torch.randint(0, 10_000, (steps * b, 21), generator=generator).numpy()
        task = LanguageModelTask(chunks, chunks[:b], 10_000, b, embedding=300, units=600, device=device)
        return _no_eval(task), optimizer_factory("sgd", momentum=0.9, momentum_form="tf"), 1.0
    if name == "mscoco":
        return (StandinDetection(batch_size or 32, steps, device=device),
                optimizer_factory("sgd", momentum=0.9, momentum_form="tf"), 0.01)
    raise ValueError(f"unknown task {name}")


def _standin_detection_class():
    from experiments.tasks.detection import DetectionTask
    from experiments.tasks.retinanet import ResNet50Features, RetinaNet

    class StandinDetection(DetectionTask):
        """MSCOCO's RetinaNet step on random 256x256 images with 1-3 random boxes each, batches pre-encoded on the
        device (FE's loader is not timed). The backbone starts random: weights do not change the step time."""

        name = "mscoco"

        def __init__(self, batch_size: int = 32, steps: int = 1, image_size: int = 256, batches: int = 4,
                     device: str = "cuda"):
            super().__init__(image_size, 90, batch_size, levels=5, anchor_scale=4.0, device=device)
            generator = torch.Generator().manual_seed(0)
            self.steps, self.batches = steps, []
            for _ in range(min(batches, steps)):
                samples = []
                for _ in range(batch_size):
                    k = int(torch.randint(1, 4, (1,), generator=generator))
                    corner = torch.rand(k, 2, generator=generator) * image_size * 0.6
                    side = 16 + torch.rand(k, 2, generator=generator) * image_size * 0.3
                    boxes = torch.cat([corner, (corner + side).clamp(max=image_size)], 1)
                    image = torch.rand(3, image_size, image_size, generator=generator) * 2 - 1
                    samples.append((image, boxes, torch.randint(0, 90, (k,), generator=generator)))
                self.batches.append(tuple(t.to(self.device) for t in self.collate(samples)))

        def train_batches(self, generator):
            for step in range(self.steps):
                yield self.batches[step % len(self.batches)]

        def build_model(self):
            backbone = ResNet50Features(None)
            return RetinaNet(backbone, backbone.channels, self.num_classes, width=256, levels=5)

        def evaluate(self, model):
            return 0.0, 0.0

    return StandinDetection


def StandinDetection(*args, **kwargs):  # noqa: N802 (the class is built on first use: torchvision imports lazily)
    return _standin_detection_class()(*args, **kwargs)


def time_task(name: str, options: dict, steps: int | None = None) -> dict:
    """Steps/s of one timed epoch of `steps` steps, after one warm-up epoch (cuDNN, allocator, compilation)."""
    from core.training import Run

    steps = steps or TIMED_STEPS[name]
    task, optimizer, lr0 = standin_task(name, "cuda", steps)
    run = Run(task, optimizer, lr0, seed=0, max_steps_per_epoch=steps, log_steps=100, **options)
    run.train(1)
    torch.cuda.synchronize()
    start = time.perf_counter()
    run.train(1)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    del run, task
    torch.cuda.empty_cache()
    return {"steps": steps, "seconds": round(seconds, 4), "steps_per_s": round(steps / seconds, 2)}


def main() -> None:
    if not torch.cuda.is_available():
        print("bench_gpu: no GPU here (torch.cuda.is_available() is False): nothing timed, nothing written")
        return
    sets = [s for s in os.environ.get("BENCH_GPU_SETS", "fp32,fast").split(",") if s in OPTION_SETS]
    device = torch.cuda.get_device_name(0)
    print(f"bench_gpu device={device} torch={torch.__version__} sets={','.join(sets)}")
    results = {"device": device, "torch": torch.__version__, "measured_at": datetime.now().isoformat(timespec="seconds"),
               "authors_steps_per_s": AUTHORS_STEPS_PER_S, "option_sets": OPTION_SETS, "tasks": {}}
    for name in TIMED_STEPS:
        for key in sets:
            measured = time_task(name, OPTION_SETS[key])
            results["tasks"].setdefault(name, {})[key] = measured
            authors, target = AUTHORS_STEPS_PER_S.get(name), TARGETS_H200.get(name)
            line = f"bench_gpu task={name} options={key} steps_per_s={measured['steps_per_s']:.1f}"
            if authors:
                line += f" authors={authors} ratio={measured['steps_per_s'] / authors:.2f}"
            if target:
                line += f" h200_target={target} {'met' if measured['steps_per_s'] >= target else 'below'}"
            print(line, flush=True)
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(path)
    print(f"bench_gpu wrote {path}")


if __name__ == "__main__":
    main()
