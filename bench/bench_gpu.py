"""`python -m bench gpu` (`make bench-gpu`): training steps per second of the paper's tasks on this GPU.

Each task runs in the project's own loop (core.training.Run: forward, backward, optimizer step, step losses kept
on the device) on stand-in random tensors of the paper's shapes, already on the GPU:
  * cifar10: ResNet9 (width 64) + the pad/crop/flip/cutout augmentation, Adam, batch 128 of 3x32x32;
  * mscoco:  RetinaNet-ResNet50-FPN (P3-P7, 90 classes; Keras' ResNet50 v1 backbone since the figures below, which
             timed torchvision's), SGD momentum 0.9, batch 32 at 256x256, 1-3 boxes per
             image (the data loader, which decodes JPEGs in worker processes on a real run, is not timed);
  * ptb:     Embedding 300 -> LSTM 600 -> Dense 10,000, SGD momentum 0.9, batch 128 of 20 tokens;
  * svhn_proxy: the selection proxy's WRN-28-2, Adam, batch 128 of 3x32x32 (no logged rate: `make plan` uses it);
  * the 12 datagen tasks of Table 1 (configs/datagen_task/*.yaml): each paper model at its paper batch size and input
    size, on the task's own stand-in tensors of the real shapes (datagen's source="standin"; no dataset, no
    pretrained file: weights do not change the step time), Adam; two batches built once and cycled on the device;
  * arc: one ARC candidate's training (arc_model.candidate_trainer, Adam, batch 128 of (300, 3) inputs) over 5,040
    random points, the paper's amount (docs/experiments.md §4.3), no held-out split as in paper.
The datagen tasks and arc are timed in `fp32` only (their runs' speed options are not the benchmarks'); `make plan`
uses fp32 rates where a set was not measured. A task that fails (e.g. out of memory) is one line and no number.
Each under two option sets: `fp32` (the authors' computation, the default) and `fast` (profile.precision=bf16,
profile.channels_last=true, profile.compile=true, profile.compile_mode=reduce-overhead). Prints steps/s and the ratio
to the authors' logged rates (docs/experiments.md §9.2 `steps/sec`: CIFAR10 58.9, MSCOCO 4.07, PTB 37.9) and writes
them to artifacts/bench/gpu.json (under $ARC_REPRO_ROOT), which `make plan` reads for its GPU-hours.

Measured rates, with their dates, commits and what each option buys: docs/measurements.md (GPU step rates).
BENCH_GPU_SETS=fp32 (or fast) times one set only; bf16_eager, fp32_graphs and fast_default_compile, when named,
take `fast` apart.
BENCH_GPU_TASKS=cifar10,ptb times those tasks only (names: the four above, the datagen task names, arc). Each line also gives where the host waited for the GPU in 5
steps (`host_waits`; the end of the epoch reads its losses once: 1 is the floor).
Without a GPU it says so and exits 0 without timing anything.
"""
from __future__ import annotations

import json
import os
import time
import traceback
import warnings
from datetime import datetime
from pathlib import Path

import torch

from pipeline.plan import AUTHORS_STEPS_PER_S  # the authors' logged training rates (docs/experiments.md §9.2)

TARGETS_H200 = {"cifar10": 400, "mscoco": 30, "ptb": 250}  # the project's speed targets, steps/s on one H200
OPTION_SETS = {"fp32": {"precision": "fp32", "channels_last": False, "compile": False},
               "fast": {"precision": "bf16", "channels_last": True, "compile": True, "compile_mode": "reduce-overhead"},
               # only when named in BENCH_GPU_SETS: which of the fast options buys what
               "bf16_eager": {"precision": "bf16", "channels_last": True, "compile": False},
               "fp32_graphs": {"precision": "fp32", "channels_last": False, "compile": True,
                               "compile_mode": "reduce-overhead"},
               "fast_default_compile": {"precision": "bf16", "channels_last": True, "compile": True}}
TIMED_STEPS = {"cifar10": 391, "mscoco": 60, "ptb": 345, "svhn_proxy": 300}  # one timed epoch of each
DATAGEN_STEPS = 30  # one timed epoch of each datagen task's paper model (two cached batches, cycled)
ARC_POINTS = 5040  # the paper's ARC training points (docs/experiments.md §4.3): 40 steps of 128 an epoch
REPO = Path(__file__).resolve().parents[1]


def datagen_tasks() -> list[str]:
    """The 12 Table-1 tasks, as configs/datagen_task/ names them."""
    return sorted(p.stem for p in (REPO / "configs" / "datagen_task").glob("*.yaml"))


def datagen_paper_node(name: str) -> tuple[str, dict, float]:
    """(the task class, its paper-size constructor arguments, the low end of its LR range) from the composed config."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import datagen.config  # noqa: F401  (registers the schemas)
    from core.cli import CONFIGS

    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("datagen", ["profile=paper", f"datagen_task={name}"])
    node = cfg.datagen_task
    return node.target, OmegaConf.to_container(node.sizes.paper.args, resolve=True), float(node.lr_range[0])


def _cycled(task, steps: int, batches: int = 2):
    """The task's first `batches` training batches, built once (on its device) and yielded `steps` times an epoch."""
    import itertools

    cached = list(itertools.islice(task.train_batches(torch.Generator().manual_seed(0)), batches))
    task.train_batches = lambda generator: (cached[i % len(cached)] for i in range(steps))
    task.steps_per_epoch = steps
    return _no_eval(task)


def datagen_standin(name: str, device: str = "cuda", steps: int = 1, batch_size: int | None = None, **overrides):
    """(task, optimizer factory, LR0) of one datagen task's paper model on its stand-in tensors of the real shapes
    (source="standin", arch="paper") at the paper batch size, `steps` steps an epoch."""
    from hydra.utils import get_object

    from core.optim import optimizer_factory

    target, args, lr0 = datagen_paper_node(name)
    b = batch_size or args["batch_size"]
    for key in ("root_dir", "num_workers"):  # the FE loader's: no dataset is read
        args.pop(key, None)
    args.update(source="standin", arch="paper", batch_size=b, n_train=2 * b, n_eval=b, **overrides)
    task = get_object(target)(device=device, **args)
    return _cycled(task, steps), optimizer_factory("adam"), lr0


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
    from experiments.tasks.retinanet import KerasResNet50Features, RetinaNet

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
            backbone = KerasResNet50Features(None)  # the paper's backbone (docs/experiments.md §7.2)
            return RetinaNet(backbone, backbone.channels, self.num_classes, width=256, levels=5)

        def evaluate(self, model):
            return 0.0, 0.0

    return StandinDetection


def StandinDetection(*args, **kwargs):  # noqa: N802 (the class is built on first use: torchvision imports lazily)
    return _standin_detection_class()(*args, **kwargs)


def host_waits(run, steps: int = 5) -> list[str]:
    """Where the host waited for the GPU during one short epoch of `steps` steps (the aim: no wait per step; the
    end of an epoch reads its step losses in one transfer, one wait). torch.cuda.set_sync_debug_mode("warn") warns
    at every synchronizing call; each is named by the innermost line of this repository on the stack."""
    waits = []

    def record(message, category, filename, lineno, file=None, line=None):
        if "synchronizing" in str(message):
            frames = [f for f in traceback.extract_stack() if str(REPO) in f.filename and "bench_gpu" not in f.filename]
            waits.append(f"{Path(frames[-1].filename).relative_to(REPO)}:{frames[-1].lineno}" if frames else filename)

    full = run.max_steps_per_epoch
    run.max_steps_per_epoch = steps
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run.train(1)
        finally:
            torch.cuda.set_sync_debug_mode("default")
            run.max_steps_per_epoch = full
    return waits


def time_arc(device: str = "cuda", points: int = ARC_POINTS, epochs: int = 2) -> dict:
    """Steps/s of ARC's candidate training: `epochs` timed epochs over `points` random points of the real input
    shape (batch 128, Adam 1e-4, the val-dropout augmentation), after one warm-up epoch."""
    import numpy as np

    from arc_model.candidate_trainer import CandidateTrainer

    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((points, 300, 3)).astype(np.float32)
    labels = rng.integers(0, 3, points).astype(np.int64)
    trainer = CandidateTrainer(inputs, labels, np.arange(points), np.arange(0), seed=0, device=device)
    trainer.train_epoch()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(epochs):
        trainer.train_epoch()
    sync()
    seconds = time.perf_counter() - start
    steps = epochs * -(-points // trainer.batch_size)
    return {"steps": steps, "seconds": round(seconds, 4), "steps_per_s": round(steps / seconds, 4), "batch_size": 128}


def time_task(name: str, options: dict, steps: int | None = None) -> dict:
    """Steps/s of one timed epoch of `steps` steps, after one warm-up epoch (cuDNN, allocator, compilation) and a
    short epoch that lists where the host waits for the GPU (`host_waits`)."""
    from core.training import Run

    if name == "arc":
        return time_arc()
    if name in TIMED_STEPS:
        steps = steps or TIMED_STEPS[name]
        task, optimizer, lr0 = standin_task(name, "cuda", steps)
    else:  # a datagen task
        steps = steps or DATAGEN_STEPS
        task, optimizer, lr0 = datagen_standin(name, "cuda", steps)
    run = Run(task, optimizer, lr0, seed=0, max_steps_per_epoch=steps, log_steps=100, **options)
    run.train(1)
    waits = host_waits(run)
    torch.cuda.synchronize()
    start = time.perf_counter()
    run.train(1)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    task_batch = getattr(task, "batch_size", None)
    del run, task
    torch.cuda.empty_cache()
    return {"steps": steps, "seconds": round(seconds, 4), "steps_per_s": round(steps / seconds, 2),
            "batch_size": task_batch, "host_waits_in_5_steps": {w: waits.count(w) for w in sorted(set(waits))}}


def main() -> None:
    if not torch.cuda.is_available():
        print("bench_gpu: no GPU here (torch.cuda.is_available() is False): nothing timed, nothing written")
        return
    sets = [s for s in os.environ.get("BENCH_GPU_SETS", "fp32,fast").split(",") if s in OPTION_SETS]
    device = torch.cuda.get_device_name(0)
    print(f"bench_gpu device={device} torch={torch.__version__} sets={','.join(sets)}")
    results = {"device": device, "torch": torch.__version__, "measured_at": datetime.now().isoformat(timespec="seconds"),
               "authors_steps_per_s": AUTHORS_STEPS_PER_S, "option_sets": OPTION_SETS, "tasks": {}}
    known = [*TIMED_STEPS, *datagen_tasks(), "arc"]
    tasks = [t for t in os.environ.get("BENCH_GPU_TASKS", ",".join(known)).split(",") if t in known]
    for name in tasks:
        for key in (sets if name in TIMED_STEPS else ["fp32"]):  # datagen tasks and arc: fp32 only
            try:
                measured = time_task(name, OPTION_SETS[key])
            except Exception as err:  # noqa: BLE001 (one task's failure, e.g. out of memory, is one line)
                print(f"bench_gpu task={name} options={key} failed: {type(err).__name__}: "
                      f"{str(err).splitlines()[0][:200] if str(err) else ''}", flush=True)
                torch.cuda.empty_cache()
                continue
            results["tasks"].setdefault(name, {})[key] = measured
            authors, target = AUTHORS_STEPS_PER_S.get(name), TARGETS_H200.get(name)
            line = f"bench_gpu task={name} options={key} steps_per_s={measured['steps_per_s']:.1f}"
            if authors:
                line += f" authors={authors} ratio={measured['steps_per_s'] / authors:.2f}"
            if target:
                line += f" h200_target={target} {'met' if measured['steps_per_s'] >= target else 'below'}"
            waits = measured.get("host_waits_in_5_steps", {})
            if name != "arc":
                line += (f" host_waits_in_5_steps={sum(waits.values())} "
                         f"{' '.join(f'{k}x{v}' for k, v in waits.items())}")
            print(line.rstrip(), flush=True)
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(path)
    print(f"bench_gpu wrote {path}")


if __name__ == "__main__":
    main()
