"""Object detection (docs/experiments.md §7.2): RetinaNet, SGD momentum 0.9, focal + smooth-L1 (`total_loss`), COCO mAP.

`ShapesTask` (mini/smoke) generates images of circles, squares and triangles with their boxes
(fixed seed) and scores them with pycocotools like FE's MeanAveragePrecision. `CocoTask` (paper)
reads MSCOCO 2017 through FE's `mscoco.load_data(root_dir)` with the repo's pipeline: LongestMaxSize
256, PadIfNeeded 256 (centred, value 0), HorizontalFlip (train), (x - 127.5) / 127.5, labels 1..90 ->
0..89. mAP is computed, as FE does, on the boxes in the transformed (256 px) frame.
"""
from __future__ import annotations

import contextlib
import io
import math

import cv2
import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from core.inputs import require, required
from core.pretrained import (KERAS_RESNET50_NOTOP, RESNET50_IMAGENET, keras_resnet50_inputs,
                             resnet50_imagenet_inputs)
from core.tasks import Task, host_to_device
from experiments.tasks import check_variant
from experiments.tasks.retinanet import (BACKBONES, KerasResNet50Features, ResNet50Features, RetinaNet, SmallFeatures,
                                         detect, encode_targets, make_anchors, retinanet_loss)

# each backbone's ImageNet file under paths.weights, and how check_data finds it
BACKBONE_FILES = {"keras_resnet50": (KERAS_RESNET50_NOTOP, keras_resnet50_inputs),
                  "torchvision_resnet50": (RESNET50_IMAGENET[1], resnet50_imagenet_inputs)}


@contextlib.contextmanager
def _numpy_float_alias():
    """fe-pycocotools' COCOeval.accumulate still uses `np.float`, removed in numpy 1.24: lend it while scoring."""
    had = "float" in np.__dict__
    np.float = float
    try:
        yield
    finally:
        if not had:
            del np.float


def coco_map(images: list[tuple[np.ndarray, np.ndarray]], detections: list, num_classes: int) -> tuple[float, float, float]:
    """(mAP@[.5:.95], AP50, AP75) with pycocotools; images = [(gt boxes x1y1x2y2, gt labels)]."""
    gt = {"images": [], "annotations": [], "categories": [{"id": c} for c in range(num_classes)]}
    results = []
    for i, ((boxes, labels), (d_boxes, d_scores, d_labels)) in enumerate(zip(images, detections)):
        gt["images"].append({"id": i})
        for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels.tolist()):
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "category_id": int(label),
                                      "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        for (x1, y1, x2, y2), score, label in zip(d_boxes.tolist(), d_scores.tolist(), d_labels.tolist()):
            results.append({"image_id": i, "category_id": int(label), "bbox": [x1, y1, x2 - x1, y2 - y1],
                            "score": score})
    if not results:
        return 0.0, 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()), _numpy_float_alias():
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return tuple(max(0.0, float(v)) for v in evaluation.stats[:3])


class DetectionTask(Task):
    """Shared RetinaNet training/eval over samples (image CHW float in [-1, 1], boxes x1y1x2y2, labels)."""

    loss_name, metric_name, metric_mode = "total_loss", "mAP", "max"

    def __init__(self, image_size: int, num_classes: int, batch_size: int, levels: int, anchor_scale: float,
                 variant: str = "keras", device: str = "cpu"):
        super().__init__(device)
        # keras: the authors' TF RetinaNet as ported; sls: their PyTorch port for SLS (docs/experiments.md §7.4):
        # no L2 term, the focal weight detached, torch's start for the FPN convs and the backbone's BatchNorms
        self.variant = check_variant(variant)
        self.image_size, self.num_classes, self.batch_size = image_size, num_classes, batch_size
        self.anchors = make_anchors(image_size, levels, anchor_scale)
        self.level_sizes = [9 * math.ceil(image_size / 2 ** lv) ** 2 for lv in range(3, 3 + levels)]
        self.levels = levels

    def flipped(self, sample):
        """HorizontalFlip of one (image, boxes, labels) sample."""
        image, boxes, labels = sample
        if len(boxes):
            boxes = torch.stack([self.image_size - boxes[:, 2], boxes[:, 1], self.image_size - boxes[:, 0],
                                 boxes[:, 3]], 1)
        return image.flip(-1), boxes, labels

    def collate(self, samples):
        """Stack images and encode their anchor targets (the repo's last pipeline op)."""
        encoded = [encode_targets(self.anchors, boxes, labels) for _, boxes, labels in samples]
        return (torch.stack([s[0] for s in samples]), torch.stack([e[0] for e in encoded]),
                torch.stack([e[1] for e in encoded]))

    def loss_of(self, model, images, cls_t, box_t):
        """(focal + smooth-L1, model outputs): RetinaLoss's `total_loss`, the loss logged, fed to ARC and evaluated."""
        cls, box = model(images)
        focal, smooth = retinanet_loss(cls, box, cls_t, box_t, detach_focal_weight=self.variant == "sls")
        return focal + smooth, (cls, box)

    def train_objective(self, model, batch):
        """The optimiser minimises total_loss + the L2 of the FPN/head kernels (FE's UpdateOp adds the model's
        regularisation losses); the step loss recorded is total_loss alone (docs/experiments.md §7.2, §5.2). The SLS
        port (variant "sls") has no L2: its objective, and so SLS's closure, is total_loss alone."""
        recorded = self.loss_of(model, *batch)[0]
        if self.variant == "sls":
            return recorded, recorded
        return recorded + model.l2_penalty(), recorded

    def train_loss(self, model, batch):
        return self.train_objective(model, batch)[0]

    def eval_sample_batches(self):
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model):
        losses, detections, truths = [], [], []
        for samples in self.eval_sample_batches():
            images, cls_t, box_t = (t.to(self.device) for t in self.collate(samples))
            loss, (cls, box) = self.loss_of(model, images, cls_t, box_t)
            losses.append(loss.item())
            detections += [tuple(t.cpu() for t in d) for d in
                           detect(cls, box, self.anchors.to(self.device), self.level_sizes, self.image_size)]
            truths += [(s[1], s[2]) for s in samples]
        mean_loss = float(np.mean(losses))
        if not math.isfinite(mean_loss):
            return mean_loss, math.nan
        return mean_loss, coco_map(truths, detections, self.num_classes)[0]


def draw_shapes(n: int, size: int, seed: int, objects: tuple[int, int] = (1, 2), sides: tuple[float, float] = (0.4, 0.8),
                noise: int = 60, overlap: bool = False):
    """Generated detection data: `objects` (min, max; inclusive) filled circles/squares/triangles (classes 0/1/2) of side
    `sides` (min, max fraction of the image, inclusive) in random bright colours (100..255 per channel) on a
    uniform-noise background (0..noise-1). overlap=False redraws an object's place (up to 20 tries, else the object is
    left out) until its box meets no earlier box, so every object is fully visible."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        image = rng.integers(0, noise, (size, size, 3)).astype(np.uint8)
        boxes, labels = [], []
        for _ in range(rng.integers(objects[0], objects[1] + 1)):
            side = int(rng.integers(round(size * sides[0]), round(size * sides[1]) + 1))
            for _ in range(20):
                x1, y1 = (int(v) for v in rng.integers(0, size - side + 1, 2))
                if overlap or all(x1 >= b[2] or b[0] >= x1 + side or y1 >= b[3] or b[1] >= y1 + side for b in boxes):
                    break
            else:
                continue
            label, color = int(rng.integers(0, 3)), tuple(int(c) for c in rng.integers(100, 256, 3))
            if label == 0:
                cv2.circle(image, (x1 + side // 2, y1 + side // 2), side // 2, color, -1)
            elif label == 1:
                cv2.rectangle(image, (x1, y1), (x1 + side - 1, y1 + side - 1), color, -1)
            else:
                pts = np.array([[x1 + side // 2, y1], [x1, y1 + side - 1], [x1 + side - 1, y1 + side - 1]], np.int32)
                cv2.fillPoly(image, [pts], color)
            boxes.append([x1, y1, x1 + side, y1 + side])
            labels.append(label)
        tensor = (torch.tensor(image, dtype=torch.float32).permute(2, 0, 1) - 127.5) / 127.5
        samples.append((tensor, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(labels)))
    return samples


class ShapesTask(DetectionTask):
    """mini/smoke stand-in for MSCOCO: the paper's RetinaNet code (focal + smooth-L1, 9 anchors per location, FPN,
    PredictBox decoding) with a small backbone (P3-P5) on generated shapes, scored by pycocotools mAP@[.5:.95].

    Defaults are the mini choices (configs/bench_task/mscoco.yaml gives the reasons): 32 px images with 1-2
    non-overlapping shapes of 40-80% of the image side, anchor side 1.5 x stride (95% of the objects get an anchor
    with IoU > 0.5, the paper's positive threshold; 1.0 gives 69%), and the FPN heads He-initialised
    (head_init="he": N(0, 2 / fan_in) on every head conv; the prior-0.01 class bias is kept). The paper's
    N(0, 0.01) head init (head_init="paper") suits a 256-wide head on an ImageNet backbone; on this narrow network
    trained from scratch each head layer scales its input by ~0.34, and BLR at LR0 0.01 reaches mAP 0.06 in 360
    steps against 0.53 with "he" (measured)."""

    name = "mscoco"

    def __init__(self, n_train: int = 512, n_eval: int = 128, image_size: int = 32, width: int = 16,
                 fpn_width: int = 32, batch_size: int = 32, objects: tuple[int, int] = (1, 2),
                 sides: tuple[float, float] = (0.4, 0.8), noise: int = 60, overlap: bool = False,
                 anchor_scale: float = 1.5, head_init: str = "he", variant: str = "keras", device: str = "cpu"):
        if head_init not in ("he", "paper"):
            raise ValueError(f"ShapesTask head_init must be 'he' or 'paper', got {head_init!r}")
        super().__init__(image_size, 3, batch_size, levels=3, anchor_scale=anchor_scale, variant=variant,
                         device=device)
        shape = dict(objects=tuple(objects), sides=tuple(sides), noise=noise, overlap=overlap)
        self.train_samples = draw_shapes(n_train, image_size, seed=1, **shape)
        self.eval_samples = draw_shapes(n_eval, image_size, seed=2, **shape)
        self.width, self.fpn_width, self.head_init = width, fpn_width, head_init
        self._cache: dict = {}
        self.steps_per_epoch = math.ceil(n_train / batch_size)

    def eval_sample_batches(self):
        for start in range(0, len(self.eval_samples), self.batch_size):
            yield self.eval_samples[start:start + self.batch_size]

    def train_batches(self, generator):
        order = torch.randperm(len(self.train_samples), generator=generator).tolist()
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            flip = torch.randint(0, 2, (len(idx),), generator=generator).tolist()
            yield tuple(host_to_device(torch.stack(parts), self.device)
                        for parts in zip(*(self._encoded(i, f) for i, f in zip(idx, flip))))

    def _encoded(self, index: int, flip: int):
        """(image, class targets, box targets) of a train sample, encoded once per flip state (data are fixed)."""
        key = (index, flip)
        if key not in self._cache:
            sample = self.train_samples[index]
            image, boxes, labels = self.flipped(sample) if flip else sample
            self._cache[key] = (image, *encode_targets(self.anchors, boxes, labels))
        return self._cache[key]

    def build_model(self):
        keras = self.variant == "keras"
        backbone = SmallFeatures(self.width, keras_init=keras)
        model = RetinaNet(backbone, backbone.channels, self.num_classes, width=self.fpn_width, levels=3,
                          keras_init=keras)
        if self.head_init == "he":  # weights only: the biases stay as RetinaNet sets them (0; class prior 0.01)
            for head in (model.cls_head, model.box_head):
                for m in head:
                    if isinstance(m, torch.nn.Conv2d):
                        torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        return model


def coco_sample(item: dict, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The repo's MSCOCO preprocessing for one FE MSCOCODataset item (image path + bbox list)."""
    image = cv2.cvtColor(cv2.imread(item["image"]), cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[top:top + nh, left:left + nw] = image
    boxes, labels = [], []
    for x, y, bw, bh, category in item["bbox"]:
        if bw * bh * scale * scale >= 1:  # min_area 1 after resizing
            boxes.append([x * scale + left, y * scale + top, (x + bw) * scale + left, (y + bh) * scale + top])
            labels.append(int(category) - 1)  # 1..90 -> 0..89
    tensor = (torch.tensor(canvas, dtype=torch.float32).permute(2, 0, 1) - 127.5) / 127.5
    return tensor, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(labels, dtype=torch.long)


class _CocoSamples(torch.utils.data.Dataset):
    def __init__(self, dataset, size: int):
        self.dataset, self.size = dataset, size

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return coco_sample(self.dataset[index], self.size)


def _backbone_file(backbone: str, weights_dir: str | None, backbone_weights: str | None) -> str | None:
    """The backbone's ImageNet weights file: `backbone_weights` when given, else its file under `weights_dir`; None
    (both unset) starts the backbone from scratch."""
    if backbone not in BACKBONES:
        raise ValueError(f"CocoTask backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
    if backbone_weights:
        return backbone_weights
    return f"{weights_dir}/{BACKBONE_FILES[backbone][0]}" if weights_dir else None


class CocoTask(DetectionTask):
    """paper: RetinaNet-ResNet50-FPN on MSCOCO 2017 at 256 px, 90 classes, batch 32, 1500 steps/epoch.

    `backbone` (docs/experiments.md §7.2): "keras_resnet50", the authors' (Keras' ImageNet ResNet50 v1, its HDF5 file
    converted: retinanet.KerasResNet50Features, with `input_preprocessing` "pipeline" as the authors or "caffe"), or
    "torchvision_resnet50" (torchvision's v1.5 IMAGENET1K_V1 file, retinanet.ResNet50Features). Its weights file is
    `backbone_weights`, else the backbone's file under `weights_dir` (the config's paths.weights), else Keras' or
    torchvision's cache; with neither set the backbone starts from scratch."""

    name = "mscoco"

    def __init__(self, root_dir: str, batch_size: int = 32, image_size: int = 256, workers: int = 8,
                 backbone: str = "keras_resnet50", weights_dir: str | None = None, backbone_weights: str | None = None,
                 input_preprocessing: str = "pipeline", steps_per_epoch: int = 1500, variant: str = "keras",
                 device: str = "cpu"):
        inputs = self.paper_inputs(root_dir, backbone_weights, backbone=backbone, weights_dir=weights_dir)
        require(inputs, "mscoco")  # dataset and backbone weights, before any work (nothing is downloaded)
        backbone_weights = _backbone_file(backbone, weights_dir, backbone_weights)
        if backbone_weights:  # the paper config sets it (ImageNet ResNet50); None trains the backbone from scratch
            backbone_weights = str(inputs[-1].found())  # the configured file, or Keras' / torchvision's cached copy
        self.backbone, self.input_preprocessing = backbone, input_preprocessing
        from fastestimator.dataset.data import mscoco

        super().__init__(image_size, 90, batch_size, levels=5, anchor_scale=4.0, variant=variant, device=device)
        train, evaluation = mscoco.load_data(root_dir=root_dir)
        self.train_set, self.eval_samples = _CocoSamples(train, image_size), _CocoSamples(evaluation, image_size)
        self.workers, self.backbone_weights, self.steps_per_epoch = workers, backbone_weights, steps_per_epoch

    @staticmethod
    def paper_inputs(root_dir: str, backbone_weights: str | None = None, backbone: str = "keras_resnet50",
                     weights_dir: str | None = None, **_):
        """The files this task reads (core.inputs.REGISTRY; `make check-data` lists the same): MSCOCO 2017 as
        FE's mscoco loader reads it, and the backbone's ImageNet ResNet50 weights when configured."""
        path = _backbone_file(backbone, weights_dir, backbone_weights)
        return required("mscoco", root_dir) + (BACKBONE_FILES[backbone][1](path) if path else [])

    def train_batches(self, generator):
        order = torch.randperm(len(self.train_set), generator=generator).tolist()
        flips = torch.randint(0, 2, (len(order),), generator=generator)
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        loader = torch.utils.data.DataLoader(self.train_set, batch_sampler=batches, num_workers=self.workers,
                                             collate_fn=list)
        for idx, samples in zip(batches, loader):
            samples = [self.flipped(s) if f else s for s, f in zip(samples, flips[idx].tolist())]
            yield tuple(host_to_device(t, self.device) for t in self.collate(samples))  # pinned: no wait for the GPU

    def eval_sample_batches(self):
        yield from torch.utils.data.DataLoader(self.eval_samples, batch_size=self.batch_size,
                                               num_workers=self.workers, collate_fn=list)

    def build_model(self):
        keras = self.variant == "keras"
        if self.backbone == "keras_resnet50":
            backbone = KerasResNet50Features(self.backbone_weights, self.input_preprocessing)
        else:
            backbone = ResNet50Features(self.backbone_weights, keras_bn=keras)
        return RetinaNet(backbone, backbone.channels, self.num_classes, width=256, levels=5, keras_init=keras)
