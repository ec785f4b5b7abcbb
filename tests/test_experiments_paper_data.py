"""The paper profile's data paths on tiny stand-in dataset directories laid out as FE's loaders expect
(nothing is downloaded): MSCOCO 2017 and its ImageNet ResNet50 backbone (Keras' or torchvision's file, from
paths.weights or the cache), PTB, and CIFAR10's python batches (read without running code). A missing file is a
one-line DataError naming it."""
from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from conftest import Payload, RESNET50_FILE, compose_cfg, one_line, save_resnet50_state
from core.errors import DataError
from experiments.tasks.detection import CocoTask
from experiments.tasks.language import PTBTask


def fake_coco(root):
    base = root / "MSCOCO2017"
    for split, ids in (("train2017", [1, 2, 3]), ("val2017", [4, 5])):
        (base / split).mkdir(parents=True)
        images, annotations = [], []
        for i in ids:
            cv2.imwrite(str(base / split / f"{i:012d}.jpg"), np.full((100, 200, 3), 40 * i, np.uint8))
            images.append({"id": i, "file_name": f"{i:012d}.jpg", "height": 100, "width": 200})
            annotations.append({"id": i, "image_id": i, "category_id": 90, "bbox": [20, 10, 60, 40], "area": 2400,
                                "iscrowd": 0})
        (base / "annotations").mkdir(exist_ok=True)
        (base / "annotations" / f"instances_{split}.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": [{"id": 90, "name": "toothbrush"}]}))


class ZeroDetector(torch.nn.Module):
    """Stand-in with RetinaNet's output shapes (the real ResNet50 model is tested elsewhere)."""

    def __init__(self, anchors):
        super().__init__()
        self.anchors, self.bias = anchors, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return (torch.zeros(len(x), self.anchors, 90) + self.bias, torch.zeros(len(x), self.anchors, 4) + self.bias)

    def l2_penalty(self):
        return self.bias.sum() * 0


def test_coco_pipeline_on_a_tiny_coco_tree(tmp_path):
    fake_coco(tmp_path)
    task = CocoTask(str(tmp_path), batch_size=2, workers=0)
    images, cls_t, box_t = next(iter(task.train_batches(torch.Generator().manual_seed(0))))
    assert images.shape == (2, 3, 256, 256) and images.min() >= -1 and images.max() <= 1
    assert (cls_t == 89).any()  # category 90 -> class 89
    # 200x100 -> 256x128, padded centred: rows 64..191 hold the image, the rest is 0 -> -1 after normalising
    assert torch.all(images[:, :, :64] == -1) and torch.all(images[:, :, 192:] == -1)
    loss, mAP = task.evaluate(ZeroDetector(len(task.anchors)))
    assert math.isfinite(loss) and mAP == 0.0


def test_ptb_loader_on_tiny_files(tmp_path):
    base = tmp_path / "PennTreeBank"
    base.mkdir()
    words = [f"w{i}" for i in range(50)]
    rng = np.random.default_rng(0)
    for split, lines in (("train", 400), ("valid", 20), ("test", 150)):
        (base / f"ptb.{split}.txt").write_text("\n".join(" ".join(rng.choice(words, 9)) for _ in range(lines)))
    task = PTBTask(str(tmp_path), embedding=8, units=8, batch_size=16)
    assert task.vocab_size == 51 and task.train_chunks.shape[1] == 21  # + <eos>; chunks of 20 + 1
    assert task.steps_per_epoch == len(task.train_chunks) // 16  # drop_last
    ce, perplexity = task.evaluate(task.build_model().eval())
    assert perplexity == pytest.approx(math.exp(ce))


def test_missing_dataset_is_a_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match="ptb.train.txt"):
        PTBTask(str(tmp_path))
    with pytest.raises(DataError, match="instances_train2017.json"):
        CocoTask(str(tmp_path))


# ---- the MSCOCO backbone, ImageNet-pretrained, from paths.weights (docs/experiments.md §7.2) ----

def empty_coco_tree(root: Path) -> None:
    """A minimal MSCOCO2017 tree as FE's mscoco.load_data reads it: one image per split, one box each."""
    import cv2
    import numpy as np

    base = root / "MSCOCO2017"
    (base / "annotations").mkdir(parents=True)
    for split, i in (("train2017", 1), ("val2017", 2)):
        (base / split).mkdir()
        cv2.imwrite(str(base / split / f"{i:012d}.jpg"), np.zeros((32, 32, 3), np.uint8))
        (base / "annotations" / f"instances_{split}.json").write_text(json.dumps({
            "images": [{"id": i, "file_name": f"{i:012d}.jpg", "height": 32, "width": 32}],
            "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100,
                             "iscrowd": 0}],
            "categories": [{"id": 1, "name": "person"}]}))


def test_paper_mscoco_backbone_is_keras_resnet50_file_under_paths_weights():
    """docs/experiments.md §7.2 ("Keras ResNet50, ImageNet-pretrained"): the paper size of the MSCOCO task takes the
    authors' backbone, Keras' ImageNet ResNet50 notop file under paths.weights (= ${paths.root}/weights); torchvision's
    ResNet50_Weights.IMAGENET1K_V1 file is the switch's other value."""
    from experiments.tasks.detection import BACKBONE_FILES

    cfg = compose_cfg("benchmark", "profile=paper", "bench_task=mscoco")
    assert cfg.paths.weights == f"{cfg.paths.root}/weights"
    build = cfg.bench_task.build
    assert build.backbone == "keras_resnet50" and build.weights_dir == cfg.paths.weights
    assert build.input_preprocessing == "pipeline"
    inputs = CocoTask.paper_inputs(build.root_dir, backbone=build.backbone, weights_dir=build.weights_dir)
    assert inputs[-1].path == Path(cfg.paths.weights).absolute() / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert BACKBONE_FILES["torchvision_resnet50"][0] == RESNET50_FILE
    other = CocoTask.paper_inputs(build.root_dir, backbone="torchvision_resnet50", weights_dir=build.weights_dir)
    assert other[-1].path == Path(cfg.paths.weights).absolute() / RESNET50_FILE
    assert cfg.paths.data == f"{cfg.paths.root}/data"  # the other keys are kept


def save_keras_resnet50_h5(path: Path) -> None:
    """A Keras HDF5 weights file of ResNet50 (notop) as h5py writes Keras' layout: every weight 0.5 but conv1's
    kernel, 0.25 (gzip keeps the constant arrays a few kB)."""
    import h5py
    import numpy as np

    from experiments.tasks.retinanet import KerasResNet50Features

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        layers = KerasResNet50Features(None).keras_layers()
        f.attrs["layer_names"] = [n.encode() for n in layers]
        for layer, module in layers.items():
            group = f.create_group(layer)
            if isinstance(module, nn.Conv2d):
                shapes = {"kernel": tuple(module.weight.shape[i] for i in (2, 3, 1, 0)), "bias": module.bias.shape}
            else:
                shapes = {k: module.weight.shape for k in ("gamma", "beta", "moving_mean", "moving_variance")}
            group.attrs["weight_names"] = [f"{layer}/{k}:0".encode() for k in shapes]
            for key, shape in shapes.items():
                value = 0.25 if layer == "conv1_conv" and key == "kernel" else 0.5
                group.create_dataset(f"{layer}/{key}:0", data=np.full(shape, value, np.float32), compression="gzip")


def test_coco_keras_backbone_loads_the_configured_h5(tmp_path, monkeypatch):
    """docs/experiments.md §7.2: the authors' backbone starts from Keras' ImageNet file, read from disk by layer name."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # an empty Keras cache
    empty_coco_tree(tmp_path)
    save_keras_resnet50_h5(tmp_path / "weights" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    task = CocoTask(str(tmp_path), batch_size=1, workers=0, weights_dir=str(tmp_path / "weights"))
    backbone = task.build_model().backbone
    assert torch.all(backbone.conv1.weight == 0.25) and torch.all(backbone.stacks[3][2].bn3.running_var == 0.5)


def test_missing_keras_backbone_file_stops_before_training_naming_it_and_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    empty_coco_tree(tmp_path)
    with pytest.raises(DataError) as err:
        CocoTask(str(tmp_path), batch_size=1, workers=0, weights_dir=str(tmp_path / "weights"))
    message = str(err.value)
    assert str(tmp_path / "weights" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5") in message
    assert str(tmp_path / "keras_home" / "models") in message and "\n" not in message


def test_coco_backbone_loads_the_configured_weights_file(tmp_path, monkeypatch):
    """docs/experiments.md §7.2: the ResNet50 backbone starts from the ImageNet weights file, read from disk."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty torchvision cache
    empty_coco_tree(tmp_path)
    weights = tmp_path / "weights" / RESNET50_FILE
    marker = save_resnet50_state(weights)
    task = CocoTask(str(tmp_path), batch_size=1, workers=0, backbone="torchvision_resnet50",
                    backbone_weights=str(weights))
    assert task.backbone_weights == str(weights)
    model = task.build_model()
    assert torch.equal(model.backbone.stem[0].weight, marker)
    assert torch.all(model.backbone.layer4[2].bn3.weight == 0.5)


def test_coco_backbone_falls_back_to_torchvision_cache(tmp_path, monkeypatch):
    """docs/experiments.md §7.2: when ${paths.weights}/resnet50-0676ba61.pth is absent, torchvision's own
    cache ($TORCH_HOME/hub/checkpoints) is used if it holds the file; nothing is downloaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    empty_coco_tree(tmp_path)
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / RESNET50_FILE
    marker = save_resnet50_state(cached)
    task = CocoTask(str(tmp_path), batch_size=1, workers=0, backbone="torchvision_resnet50",
                    backbone_weights=str(tmp_path / "weights" / RESNET50_FILE))  # not there
    assert task.backbone_weights == str(cached)
    assert torch.equal(task.build_model().backbone.stem[0].weight, marker)


def test_missing_backbone_weights_stop_before_training_naming_file_and_weights_id(tmp_path, monkeypatch):
    """docs/experiments.md §7.2: missing ImageNet weights are a DataError at task construction (before any
    model is built or trained) naming the file and the torchvision weights id."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    empty_coco_tree(tmp_path)
    configured = tmp_path / "weights" / RESNET50_FILE
    with pytest.raises(DataError) as err:
        CocoTask(str(tmp_path), batch_size=1, workers=0, backbone="torchvision_resnet50",
                 backbone_weights=str(configured))
    message = str(err.value)
    assert str(configured) in message and "ResNet50_Weights.IMAGENET1K_V1" in message
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in message  # where else it looked
    assert "\n" not in message


# ---- CIFAR10's python batches are read without running code ----

@pytest.mark.slow
def test_cifar10_batches_are_read_without_running_code(tmp_path, monkeypatch):
    from core.inputs import required
    from experiments.tasks.images import load_cifar10

    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:  # the real files' layout (10k each)
        batch = {b"batch_label": b"b", b"labels": rng.integers(0, 10, 10000).tolist(),
                 b"data": rng.integers(0, 256, (10000, 3072), dtype=np.uint8), b"filenames": [b"f.png"] * 10000}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    monkeypatch.setattr("core.inputs.missing", lambda items: [])  # sizes differ from the registry's
    train, evaluation = load_cifar10(required("cifar10", str(tmp_path)))
    assert train["x"].shape == (50000, 32, 32, 3) and train["x"].dtype == np.uint8 and evaluation["y"].shape == (10000,)
    first = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")
    assert np.array_equal(train["x"][0], first[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0))
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Payload(marker), b"labels": []}, protocol=2))
    with pytest.raises(DataError) as info:
        load_cifar10(required("cifar10", str(tmp_path)))
    one_line(str(info.value), "data_batch_3", "refused")
    assert not marker.exists()
