"""Every paper model is built at its real size and trained 2 steps on stand-in tensors of the real shapes
(small batch); the RetinaNet pieces follow docs/experiments.md §7.2; the mini tasks build offline."""
from __future__ import annotations

import math

import pytest
import torch

from experiments.tasks.detection import ShapesTask, coco_map
from experiments.tasks.images import DigitsTask, ResNet9, augment
from experiments.tasks.language import LSTMLanguageModel, StdlibTextTask, chunk
from experiments.tasks.retinanet import (IGNORE, ResNet50Features, RetinaNet, decode_boxes, encode_targets,
                                         make_anchors, retinanet_loss)


def two_steps(model, loss_fn, optimizer):
    losses = []
    for _ in range(2):
        optimizer.zero_grad()
        loss = loss_fn(model)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    return losses


def test_paper_resnet9_on_cifar_shapes():
    torch.manual_seed(0)
    model = ResNet9(3, 64)
    assert sum(p.numel() for p in model.parameters()) == 6_575_370  # Page's ResNet9 size
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    x = augment(x, pad=4, hole=8, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 32, 32) and (x == 0).flatten(1).sum(1).min() >= 8 * 8 * 3
    two_steps(model, lambda m: torch.nn.functional.cross_entropy(m(x), y), torch.optim.Adam(model.parameters(), 1e-3))


def test_paper_retinanet_on_coco_shapes():
    torch.manual_seed(0)
    backbone = ResNet50Features()
    model = RetinaNet(backbone, backbone.channels, 90)
    anchors = make_anchors(256)
    assert len(anchors) == 9 * (32**2 + 16**2 + 8**2 + 4**2 + 2**2)  # P3-P7 at 256 px
    boxes = torch.tensor([[10.0, 20.0, 90.0, 120.0], [150.0, 30.0, 250.0, 200.0]])
    cls_t, box_t = encode_targets(anchors, boxes, torch.tensor([0, 89]))
    x = torch.rand(1, 3, 256, 256) * 2 - 1  # batch 1 keeps the CPU test short; shapes are the real ones

    def loss(m):
        c, b = m(x)
        assert c.shape == (1, len(anchors), 90) and b.shape == (1, len(anchors), 4)
        return sum(retinanet_loss(c, b, cls_t[None], box_t[None])) + m.l2_penalty()

    two_steps(model, loss, torch.optim.SGD(model.parameters(), 1e-3, momentum=0.9))


def test_paper_lstm_on_ptb_shapes():
    torch.manual_seed(0)
    model = LSTMLanguageModel(10_000, 300, 600)
    assert sum(p.numel() for p in model.parameters()) == 11_172_400 + 4 * 600  # Keras count + torch's 2nd bias
    chunks = torch.randint(0, 10_000, (4, 21))

    def loss(m):
        return torch.nn.functional.cross_entropy(m(chunks[:, :-1]).reshape(-1, 10_000), chunks[:, 1:].reshape(-1))

    losses = two_steps(model, loss, torch.optim.SGD(model.parameters(), 1.0, momentum=0.9))
    assert losses[0] == pytest.approx(math.log(10_000), rel=0.01)


def test_anchor_targets_follow_spec():
    anchors = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 12], [0, 0, 10, 20], [50, 50, 60, 60]])
    cls, reg = encode_targets(anchors, torch.tensor([[0.0, 0, 10, 11]]), torch.tensor([7]))
    # IoUs with the authors' +1 pixel areas: 121/132 (>0.5 positive), 132/143 (best: forced positive),
    # 132/231 = 0.571 (positive), 0 (background)
    assert cls.tolist() == [7, 7, 7, -1]
    cls, _ = encode_targets(anchors[2:3], torch.tensor([[0.0, 0, 10, 9]]), torch.tensor([1]))
    assert cls.tolist() == [1]  # best anchor forced to 0.99 even at IoU 110/231 = 0.476
    two = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 22]])
    cls, _ = encode_targets(two, torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0]))
    assert cls.tolist() == [0, IGNORE]  # IoU 121/253 = 0.478 (+1 pixel areas) is in (0.4, 0.5]
    pos = reg[:3]
    assert torch.allclose(decode_boxes(anchors[:3], pos), torch.tensor([[0.0, 0, 10, 11]] * 3), atol=1e-5)


def test_focal_loss_value():
    logits = torch.tensor([[[2.0, -1.0], [0.0, 0.0]]])
    cls_t, box_t = torch.tensor([[1, -1]]), torch.zeros(1, 2, 4)
    focal, smooth = retinanet_loss(logits, torch.zeros(1, 2, 4), cls_t, box_t)
    p = torch.sigmoid(logits)[0]
    expected = (0.75 * p[0, 0] ** 2 * -torch.log(1 - p[0, 0]) + 0.25 * (1 - p[0, 1]) ** 2 * -torch.log(p[0, 1])
                + 2 * 0.75 * 0.5**2 * math.log(2))  # background anchor: both classes negative
    assert focal.item() == pytest.approx(expected.item(), rel=1e-5) and smooth.item() == 0


def test_coco_map_scores_perfect_and_empty_detections():
    truth = [(torch.tensor([[1.0, 1, 9, 9]]), torch.tensor([2]))]
    assert coco_map(truth, [(truth[0][0], torch.ones(1), truth[0][1])], 3) == pytest.approx((1.0, 1.0, 1.0))
    assert coco_map(truth, [(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))], 3)[0] == 0.0


def test_mini_tasks_build_offline():
    digits = DigitsTask(width=4, n_train=256)
    shapes = ShapesTask(n_train=32, n_eval=8, width=4, fpn_width=8, batch_size=16)
    text = StdlibTextTask(vocab_size=200, embedding=8, units=16, batch_size=32, max_train_chunks=64)
    assert (digits.steps_per_epoch, shapes.steps_per_epoch, text.steps_per_epoch) == (2, 2, 2)
    assert text.vocab_size == 200 and chunk(list(range(45))).shape == (2, 21)
    for task in (digits, shapes, text):
        model = task.build_model()
        loss = task.train_loss(model, next(iter(task.train_batches(torch.Generator().manual_seed(0)))))
        assert math.isfinite(loss.item())
        model.eval()
        assert all(math.isfinite(v) for v in task.evaluate(model))
