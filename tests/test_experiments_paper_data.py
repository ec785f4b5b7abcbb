"""The paper profile's data paths on tiny stand-in dataset directories laid out as FE's loaders expect
(nothing is downloaded): MSCOCO 2017 and PTB. A missing file is a one-line DataError naming it."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

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
