"""RetinaNet as the repo builds it (docs/experiments.md §7.2): backbone C3-C5 -> FPN P3-P7 -> shared heads, anchors,
anchor-target encoding, focal + smooth-L1 loss and eval decoding.

Box convention inside this module: x1, y1, x2, y2 in pixels (COCO's x1, y1, w, h only at the edges).
`levels` (5 in the paper: P3-P7) and `anchor_scale` (anchor side = anchor_scale * stride; 4 gives the
paper's 32..512) let the mini profile run the same code on small images.
"""
from __future__ import annotations

import math

import torch
import torchvision
from torch import nn

from core.keras_init import APPLICATIONS_BN_EPS, keras_conventions_
from core.pretrained import resnet50

SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
RATIOS = (1.0, 2.0, 0.5)  # height / width
IGNORE, BACKGROUND = -2, -1  # anchor labels besides the class index (docs/experiments.md §7.2)


def make_anchors(image_size: int, levels: int = 5, anchor_scale: float = 4.0) -> torch.Tensor:
    """(A, 4) anchors, level by level (P3 first), location-major then 9 shapes, as x1, y1, x2, y2."""
    out = []
    for level in range(3, 3 + levels):
        stride = 2 ** level
        n = math.ceil(image_size / stride)
        centers = (torch.arange(n, dtype=torch.float32) + 0.5) * stride
        cy, cx = torch.meshgrid(centers, centers, indexing="ij")
        shapes = []
        for ratio in RATIOS:
            for scale in SCALES:
                side = anchor_scale * stride * scale
                w, h = side / math.sqrt(ratio), side * math.sqrt(ratio)
                shapes.append((w, h))
        wh = torch.tensor(shapes)
        c = torch.stack([cx.reshape(-1), cy.reshape(-1)], 1)[:, None, :]
        out.append(torch.cat([c - wh / 2, c + wh / 2], 2).reshape(-1, 4))
    return torch.cat(out)


def iou_plus_one(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """(N, M) IoU of x1, y1, x2, y2 boxes with the +1 pixel convention of the authors' AnchorBox._get_iou
    (docs/experiments.md §7.2): area (x2 - x1 + 1)(y2 - y1 + 1), intersection max(min x2 - max x1 + 1, 0) per side."""
    a, b = boxes_a[:, None, :], boxes_b[None, :, :]
    side = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2]) + 1).clamp(min=0)
    inter = side[..., 0] * side[..., 1]
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    return inter / (area_a + area_b - inter)


def encode_targets(anchors: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor):
    """Anchor targets (docs/experiments.md §7.2): each object's best anchor is forced to IoU 0.99; IoU (+1 pixel
    convention, `iou_plus_one`) > 0.5 positive, 0.4 < IoU <= 0.5 ignore, else background. Box targets dx1, dy1 (by
    anchor size), log w, log h."""
    cls = torch.full((len(anchors),), BACKGROUND, dtype=torch.long)
    reg = torch.zeros(len(anchors), 4)
    if len(boxes) == 0:
        return cls, reg
    iou = iou_plus_one(anchors, boxes)  # (A, G)
    iou[iou.argmax(0), torch.arange(len(boxes))] = 0.99
    best, obj = iou.max(1)
    cls[(best > 0.4) & (best <= 0.5)] = IGNORE
    positive = best > 0.5
    cls[positive] = labels[obj[positive]]
    g, a = boxes[obj], anchors
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    gw, gh = (g[:, 2] - g[:, 0]).clamp(min=1e-3), (g[:, 3] - g[:, 1]).clamp(min=1e-3)
    reg = torch.stack([(g[:, 0] - a[:, 0]) / aw, (g[:, 1] - a[:, 1]) / ah, torch.log(gw / aw), torch.log(gh / ah)], 1)
    return cls, reg * positive[:, None]


def decode_boxes(anchors: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    x1, y1 = anchors[:, 0] + reg[:, 0] * aw, anchors[:, 1] + reg[:, 1] * ah
    return torch.stack([x1, y1, x1 + aw * torch.exp(reg[:, 2]), y1 + ah * torch.exp(reg[:, 3])], 1)


def retinanet_loss(cls_logits, box_reg, cls_target, box_target, alpha=0.25, gamma=2.0, beta=0.1,
                   detach_focal_weight=False):
    """Focal loss (sum over object + background anchors / #positives) + smooth-L1 (beta 0.1, positives /
    #positives), each per image then averaged over the batch (docs/experiments.md §7.2). Returns (focal, smooth_l1).
    Computed in fp32 whatever the forward pass ran in (profile.precision=bf16 autocasts the heads' outputs), and
    without boolean indexing or one_hot, whose output sizes the GPU must report to the host (a wait at every step):
    a positive anchor's row is 1 at its class, every other row is 0 (background -1 and ignored -2 match no class).
    The focal weight alpha_t (1 - p_t)^gamma carries gradient, as TF's sample_weight in the authors' Keras loss;
    `detach_focal_weight` stops it, as their PyTorch port for SLS does (`weight=focal_weight.detach()`, §7.4)."""
    cls_logits, box_reg = cls_logits.float(), box_reg.float()
    valid = cls_target != IGNORE
    positive = cls_target >= 0
    n_pos = positive.sum(1).clamp(min=1).float()
    classes = torch.arange(cls_logits.shape[-1], device=cls_target.device)
    onehot = (cls_target[..., None] == classes).float()
    p = torch.sigmoid(cls_logits)
    p_t = torch.where(onehot > 0, p, 1 - p)
    alpha_t = torch.where(onehot > 0, torch.full_like(p, alpha), torch.full_like(p, 1 - alpha))
    bce = nn.functional.binary_cross_entropy_with_logits(cls_logits, onehot, reduction="none")
    weight = alpha_t * (1 - p_t) ** gamma
    focal = ((weight.detach() if detach_focal_weight else weight) * bce).sum(-1) * valid
    smooth = nn.functional.smooth_l1_loss(box_reg, box_target, reduction="none", beta=beta).sum(-1) * positive
    return (focal.sum(1) / n_pos).mean(), (smooth.sum(1) / n_pos).mean()


class RetinaNet(nn.Module):
    """Backbone (returns C3, C4, C5) + FPN + class/box heads shared across levels (docs/experiments.md §7.2).
    The authors' FPN convs set no initializer: Keras' Conv2D start (glorot_uniform, zero bias, core.keras_init);
    their heads set N(0, 0.01) and, on the class output, the prior bias log(1/99) (`_head`)."""

    def __init__(self, backbone: nn.Module, backbone_channels: tuple[int, int, int], num_classes: int,
                 width: int = 256, levels: int = 5, anchors_per_location: int = 9, keras_init: bool = True):
        super().__init__()
        self.backbone, self.levels, self.num_classes = backbone, levels, num_classes
        c3, c4, c5 = backbone_channels
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in (c3, c4, c5))
        self.smooth = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(3))
        self.extra = nn.ModuleList(nn.Conv2d(c5 if i == 0 else width, width, 3, stride=2, padding=1)
                                   for i in range(levels - 3))
        for convs in (self.lateral, self.smooth, self.extra):  # keras_init=False: torch's start (the SLS port)
            if keras_init:
                keras_conventions_(convs)
        self.cls_head = self._head(width, num_classes * anchors_per_location)
        self.box_head = self._head(width, 4 * anchors_per_location)
        nn.init.constant_(self.cls_head[-1].bias, math.log(1 / 99))  # prior 0.01

    @staticmethod
    def _head(width: int, outputs: int) -> nn.Sequential:
        layers = []
        for _ in range(4):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(width, outputs, 3, padding=1))
        for m in layers:  # N(0, 0.01) at the paper's width 256; std scaled so narrower heads keep its per-layer gain
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01 * math.sqrt(256 / width))
                nn.init.zeros_(m.bias)
        return nn.Sequential(*layers)

    def l2_penalty(self) -> torch.Tensor:
        """Keras l2(1e-4) kernel regularisers of the FPN and head convs, added to the loss (FE UpdateOp)."""
        convs = [*self.lateral, *self.smooth, *self.extra, *self.cls_head, *self.box_head]
        return 1e-4 * sum((m.weight ** 2).sum() for m in convs if isinstance(m, nn.Conv2d))

    def forward(self, x):
        c3, c4, c5 = self.backbone(x)
        p5 = self.lateral[2](c5)
        p4 = self.lateral[1](c4) + nn.functional.interpolate(p5, size=c4.shape[-2:], mode="nearest")
        p3 = self.lateral[0](c3) + nn.functional.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        features = [self.smooth[0](p3), self.smooth[1](p4), self.smooth[2](p5)]
        extra = c5
        for i, conv in enumerate(self.extra):
            extra = conv(extra if i == 0 else torch.relu(extra))
            features.append(extra)
        b = x.shape[0]
        cls = torch.cat([self.cls_head(f).permute(0, 2, 3, 1).reshape(b, -1, self.num_classes) for f in features], 1)
        box = torch.cat([self.box_head(f).permute(0, 2, 3, 1).reshape(b, -1, 4) for f in features], 1)
        return cls, box


class ResNet50Features(nn.Module):
    """torchvision ResNet50 returning C3 (layer2), C4 (layer3), C5 (layer4): Keras layers 80/142/last.

    `weights_path`: a torchvision ResNet50 state dict (the paper: ImageNet weights, docs/experiments.md §7.2, found by
    core.pretrained); None builds a randomly initialised backbone (torchvision's init). Nothing is downloaded.
    Its BatchNorms update their statistics as Keras' ResNet50 does (momentum 0.99 = torch 0.01, epsilon 1.001e-5);
    the weights are left as loaded (docs/experiments.md §2.3)."""

    channels = (512, 1024, 2048)

    def __init__(self, weights_path: str | None = None, keras_bn: bool = True):
        super().__init__()
        net = resnet50(weights_path)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
        self.layer2, self.layer3, self.layer4 = net.layer2, net.layer3, net.layer4
        if keras_bn:  # False: torch's BN momentum 0.1, eps 1e-5, as the authors' PyTorch port for SLS (§7.4)
            keras_conventions_(self, init=False, bn_eps=APPLICATIONS_BN_EPS)

    def forward(self, x):
        c3 = self.layer2(self.stem(x))
        c4 = self.layer3(c3)
        return c3, c4, self.layer4(c4)


# keras.applications' caffe-mode preprocess_input: RGB -> BGR, minus the ImageNet channel means (B, G, R), no scaling
CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)
BACKBONES = ("keras_resnet50", "torchvision_resnet50")  # the authors' (Keras' file, converted) | torchvision's v1.5


class KerasBottleneck(nn.Module):
    """keras.applications.resnet's `block1` (ResNet v1): 1x1 conv (stride here: v1), 3x3 'same' conv, 1x1 conv x4,
    each with bias and BatchNormalization(epsilon=1.001e-5, Keras momentum 0.99); a 1x1 conv + BN shortcut on the
    first block of a stack; add, ReLU. Modules named after the Keras layers' suffixes (_0 shortcut, _1, _2, _3)."""

    def __init__(self, c_in: int, filters: int, stride: int, shortcut: bool):
        super().__init__()

        def bn(c: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(c, eps=APPLICATIONS_BN_EPS, momentum=0.01)

        if shortcut:
            self.conv0, self.bn0 = nn.Conv2d(c_in, 4 * filters, 1, stride=stride), bn(4 * filters)
        self.conv1, self.bn1 = nn.Conv2d(c_in, filters, 1, stride=stride), bn(filters)
        self.conv2, self.bn2 = nn.Conv2d(filters, filters, 3, padding=1), bn(filters)
        self.conv3, self.bn3 = nn.Conv2d(filters, 4 * filters, 1), bn(4 * filters)

    def forward(self, x):
        skip = self.bn0(self.conv0(x)) if hasattr(self, "conv0") else x
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        return torch.relu(skip + self.bn3(self.conv3(y)))


class KerasResNet50Features(nn.Module):
    """The authors' backbone (docs/experiments.md §7.2): `tf.keras.applications.ResNet50(weights="imagenet",
    include_top=False)` as a torch module, returning C3 = conv3_block4_out (Keras layer 80), C4 = conv4_block6_out
    (layer 142) and C5 = conv5_block3_out (the last layer).

    ResNet v1 (stride 2 in the first 1x1 conv of each downsampling block, where torchvision's v1.5 puts it in the 3x3),
    convs with bias, BatchNormalization(epsilon=1.001e-5) updating with Keras' momentum 0.99 (torch 0.01). The 7x7
    conv after ZeroPadding2D(3) is torch's padding=3; the max pool after ZeroPadding2D(1) pads zeros, torch's -inf,
    which agree on the ReLU's non-negative output.

    `weights_path`: Keras' ImageNet file resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 (or any Keras HDF5
    weights file of that model), read by layer name (core.pretrained.read_keras_h5); None starts as Keras would with
    weights=None (glorot_uniform, zero bias). `input_preprocessing`: "pipeline" (the authors': the model takes the
    pipeline's (x - 127.5) / 127.5 as it is; their code never calls Keras' preprocess_input) or "caffe" (Keras'
    preprocess_input on the pipeline's pixels: undo the scaling, RGB -> BGR, minus the ImageNet means)."""

    channels = (512, 1024, 2048)
    STACKS = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (filters, blocks, stride of the first block)

    def __init__(self, weights_path: str | None = None, input_preprocessing: str = "pipeline"):
        super().__init__()
        if input_preprocessing not in ("pipeline", "caffe"):
            raise ValueError(f"input_preprocessing must be 'pipeline' or 'caffe', got {input_preprocessing!r}")
        self.input_preprocessing = input_preprocessing
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64, eps=APPLICATIONS_BN_EPS, momentum=0.01)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        stacks, c_in = [], 64
        for filters, blocks, stride in self.STACKS:
            stacks.append(nn.Sequential(*(KerasBottleneck(c_in if b == 0 else 4 * filters, filters,
                                                          stride if b == 0 else 1, shortcut=b == 0)
                                          for b in range(blocks))))
            c_in = 4 * filters
        self.stacks = nn.ModuleList(stacks)
        self.register_buffer("caffe_means", torch.tensor(CAFFE_BGR_MEANS).view(1, 3, 1, 1), persistent=False)
        if weights_path:
            self.load_keras_h5(weights_path)
        else:
            keras_conventions_(self, bn_eps=APPLICATIONS_BN_EPS)

    def keras_layers(self) -> dict[str, nn.Module]:
        """{Keras layer name: the torch module holding its weights}, for every layer of Keras' ResNet50 (notop) that
        has weights: conv1_conv, conv1_bn, conv{2..5}_block{n}_{0..3}_{conv,bn}."""
        out = {"conv1_conv": self.conv1, "conv1_bn": self.bn1}
        for stage, stack in enumerate(self.stacks, start=2):
            for index, block in enumerate(stack, start=1):
                for part in range(4):
                    if hasattr(block, f"conv{part}"):
                        out[f"conv{stage}_block{index}_{part}_conv"] = getattr(block, f"conv{part}")
                        out[f"conv{stage}_block{index}_{part}_bn"] = getattr(block, f"bn{part}")
        return out

    @torch.no_grad()
    def load_keras_h5(self, path: str) -> None:
        """Every weighted layer's weights from a Keras HDF5 weights file, by layer name: conv kernels (kh, kw, in,
        out) -> (out, in, kh, kw); BN gamma, beta, moving mean / variance -> weight, bias, running mean / var. A
        missing layer or a shape that differs is a CheckpointError naming the file."""
        from core.errors import CheckpointError
        from core.pretrained import read_keras_h5

        layers = read_keras_h5(path)
        wanted = self.keras_layers()
        absent = [name for name in wanted if name not in layers]
        if absent:
            raise CheckpointError(f"{path}: not Keras' ResNet50 weights: no layer {', '.join(absent[:3])}"
                                  f"{' ...' if len(absent) > 3 else ''} ({len(absent)} of {len(wanted)} missing)")
        for name, module in wanted.items():
            weights = layers[name]
            if isinstance(module, nn.Conv2d):
                pairs = [(module.weight, weights["kernel"].transpose(3, 2, 0, 1)), (module.bias, weights["bias"])]
            else:
                pairs = [(module.weight, weights["gamma"]), (module.bias, weights["beta"]),
                         (module.running_mean, weights["moving_mean"]), (module.running_var, weights["moving_variance"])]
            for tensor, array in pairs:
                if tuple(array.shape) != tuple(tensor.shape):
                    raise CheckpointError(f"{path}: layer {name} holds shape {tuple(array.shape)}, Keras' ResNet50 "
                                          f"has {tuple(tensor.shape)}")
                tensor.copy_(torch.from_numpy(array.copy()))

    def forward(self, x):
        if self.input_preprocessing == "caffe":
            x = (x * 127.5 + 127.5).flip(1) - self.caffe_means  # the pipeline's [-1, 1] back to pixels, then caffe
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        c3 = self.stacks[1](self.stacks[0](x))
        c4 = self.stacks[2](c3)
        return c3, c4, self.stacks[3](c4)


class SmallFeatures(nn.Module):
    """mini backbone: stride-2 conv-BN-ReLU stages, C3/C4/C5 at strides 8/16/32; Keras' Conv2D and
    BatchNormalization defaults (core.keras_init), as the stand-in for the authors' Keras ResNet50 [I]."""

    def __init__(self, width: int = 16, keras_init: bool = True):
        super().__init__()
        w = width
        self.channels = (4 * w, 8 * w, 8 * w)

        def stage(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())

        self.stem = nn.Sequential(stage(3, w), stage(w, 2 * w), stage(2 * w, 4 * w))
        self.c4, self.c5 = stage(4 * w, 8 * w), stage(8 * w, 8 * w)
        if keras_init:  # False: torch's defaults, as the SLS port's torchvision backbone
            keras_conventions_(self)

    def forward(self, x):
        c3 = self.stem(x)
        c4 = self.c4(c3)
        return c3, c4, self.c5(c4)


@torch.no_grad()
def detect(cls_logits, box_reg, anchors, level_sizes, image_size: float, top_k=1000, score_threshold=0.05, iou=0.5,
           keep=100):
    """Eval decoding as the authors' PredictBox (docs/experiments.md §7.2; source/normal_compare/instance_detection):
    each anchor's score and label are its best class (sigmoid max / argmax); per level the top-k anchors by score;
    class-agnostic NMS (IoU 0.5, TF's default) keeping `keep`; then boxes with score <= 0.05 are dropped and the boxes
    clipped to the image as PredictBox does: x1, y1 to [0, size], then w, h to [0, size - x1 / y1] (so a box cut on
    the left or top keeps its width / height). Returns per image (boxes x1y1x2y2, scores, labels), by score."""
    results = []
    for logits, reg in zip(cls_logits, box_reg):
        scores, labels = torch.sigmoid(logits).max(-1)
        top, start = [], 0
        for size in level_sizes:
            level = scores[start:start + size]
            top.append(start + level.topk(min(top_k, len(level))).indices)
            start += size
        top = torch.cat(top)
        boxes = decode_boxes(anchors[top], reg[top])
        kept = top[torchvision.ops.nms(boxes, scores[top], iou)[:keep]]
        kept = kept[scores[kept] > score_threshold]
        box = decode_boxes(anchors[kept], reg[kept])
        x1, y1 = box[:, 0].clamp(0, image_size), box[:, 1].clamp(0, image_size)
        w = torch.minimum((box[:, 2] - box[:, 0]).clamp(min=0), image_size - x1)
        h = torch.minimum((box[:, 3] - box[:, 1]).clamp(min=0), image_size - y1)
        results.append((torch.stack([x1, y1, x1 + w, y1 + h], 1), scores[kept], labels[kept]))
    return results
