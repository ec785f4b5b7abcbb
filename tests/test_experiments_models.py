"""Every paper model is built at its real size and trained 2 steps on stand-in tensors of the real shapes
(small batch); the RetinaNet pieces follow docs/experiments.md §7.2 (decoding as the authors' PredictBox, the loss
logged without L2, focal + smooth-L1 and anchor targets worked out by hand, the +1 pixel IoU); the PTB LSTM's init;
the mini tasks build offline."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from core.training import Run
from experiments.tasks.detection import ShapesTask, coco_map
from experiments.tasks.images import DigitsTask, ResNet9, augment
from experiments.tasks.language import LSTMLanguageModel, StdlibTextTask, chunk
from experiments.tasks.retinanet import (IGNORE, ResNet50Features, RetinaNet, decode_boxes, detect, encode_targets,
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


@pytest.mark.slow
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


# ---- RetinaNet eval decoding as the authors' PredictBox ----

def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_detect_follows_the_authors_predictbox():
    """docs/experiments.md §7.2 "Decoding for eval"; authors' source/normal_compare/instance_detection/*.py
    PredictBox: per-anchor max class, top-k per level (k = 2 here, 1000 in the paper), class-agnostic NMS (IoU 0.5)
    keeping 100, then the 0.05 score threshold, then clipping x1, y1 to [0, 64] and w, h to [0, 64 - x1/y1]."""
    probs = [[0.9, 0.8, 0.1],  # level 0: a0 [10, 10, 30, 30], decoded with reg below
             [0.2, 0.1, 0.7],  # a1 [10, 10, 30, 30]: max class 2 (0.7), overlaps a0 -> suppressed class-agnostic
             [0.3, 0.02, 0.01],  # a2 [40, 40, 60, 60]: third-best anchor of level 0 -> cut by top-2
             [0.01, 0.01, 0.01],  # a3: cut by top-2
             [0.1, 0.6, 0.1],  # level 1: a4 [-8, 20, 24, 52] sticks out on the left
             [0.5, 0.2, 0.1],  # a5 [50, 0, 74, 16] sticks out on the right
             [0.02, 0.01, 0.01],  # a6: cut by top-2
             [0.04, 0.03, 0.02]]  # level 2: a7 [0, 0, 8, 8], 0.04 <= 0.05 -> dropped after NMS
    anchors = torch.tensor([[10, 10, 30, 30], [10, 10, 30, 30], [40, 40, 60, 60], [0, 40, 16, 56],
                            [-8, 20, 24, 52], [50, 0, 74, 16], [20, 50, 30, 60], [0, 0, 8, 8]], dtype=torch.float32)
    cls = torch.tensor([[[logit(p) for p in row] for row in probs]])
    reg = torch.zeros(1, 8, 4)
    reg[0, 0] = torch.tensor([0.1, 0.0, math.log(1.5), 0.0])
    # a0 decoded: x1 = 10 + 0.1 * 20 = 12, y1 = 10, w = 20 * 1.5 = 30, h = 20 -> [12, 10, 42, 30]
    # IoU(a0, a1) = (18 * 20) / (600 + 400 - 360) = 360 / 640 = 0.5625 > 0.5 -> a1 suppressed
    # (class-wise NMS, as today's code does, would keep a1 as a class-2 box; and top-k over (anchor, class) pairs
    # would keep a0 twice, as class 0 (0.9) and class 1 (0.8))
    # a4: x1 = -8 -> clip 0, w = 32 -> clip [0, 64 - 0] = 32 (the authors clip x1 and w separately) -> [0, 20, 32, 52]
    # a5: x1 = 50, w = 24 -> clip [0, 64 - 50] = 14 -> [50, 0, 64, 16]
    ((boxes, scores, labels),) = detect(cls, reg, anchors, [4, 3, 1], image_size=64, top_k=2)
    assert labels.tolist() == [0, 1, 0]
    assert scores.tolist() == pytest.approx([0.9, 0.6, 0.5], abs=1e-6)
    assert boxes.flatten().tolist() == pytest.approx([12, 10, 42, 30, 0, 20, 32, 52, 50, 0, 64, 16], abs=1e-5)


# ---- detection loss: logged / ARC / eval without L2, optimised with L2 ----

def tiny_shapes() -> ShapesTask:
    return ShapesTask(n_train=8, n_eval=8, image_size=32, width=4, fpn_width=8, batch_size=8)


def test_detection_records_focal_plus_smooth_l1_and_minimises_it_plus_l2():
    """docs/experiments.md §7.2 ("Loss" + "FE's UpdateOp adds the L2 terms") and §5.2 (ARC reads the logged
    `total_loss` = RetinaLoss's focal + l1, authors' base_lr.py): the step loss recorded (history, log, ARC) and the
    eval loss exclude L2; the SGD step follows the gradient of focal + smooth-L1 + L2."""
    task = tiny_shapes()
    run = Run(task, "sgd", 0.01, seed=0, max_steps_per_epoch=1)
    start = copy.deepcopy(run.model).train()
    batch = next(iter(task.train_batches(torch.Generator().manual_seed(0))))  # the run's first batch (seed 0)
    images, cls_t, box_t = batch
    focal, smooth = retinanet_loss(*start(images), cls_t, box_t)
    l2 = start.l2_penalty()
    assert l2.item() > 1e-4  # large enough to tell the two losses apart
    (focal + smooth + l2).backward()
    expected = {name: p.detach() - 0.01 * p.grad for name, p in start.named_parameters()}
    run.train(1)
    assert run.history.step_loss[0] == pytest.approx((focal + smooth).item(), rel=1e-5)
    for name, p in run.model.named_parameters():
        assert torch.allclose(p.detach(), expected[name], atol=1e-6), name
    # eval loss: focal + smooth-L1 only
    model = run.model.eval()
    with torch.no_grad():
        eval_loss, _ = task.evaluate(model)
        e_images, e_cls, e_box = task.collate(task.eval_samples)
        e_focal, e_smooth = retinanet_loss(*model(e_images), e_cls, e_box)
    assert eval_loss == pytest.approx((e_focal + e_smooth).item(), rel=1e-5)


# ---- PTB LSTM init ----

def test_lstm_glorot_over_the_whole_kernel_and_recurrent_matrices():
    """docs/experiments.md §7.3 ("LSTM 600, glorot_uniform recurrent init"; kernel_initializer is the Keras default
    glorot_uniform): Glorot over the whole (in, 4u) kernel and (u, 4u) recurrent matrix, not per gate; one zero bias
    with forget-gate bias 1 (Keras unit_forget_bias)."""
    torch.manual_seed(0)
    model = LSTMLanguageModel(vocab=10, embedding=8, units=16)
    w_ih, w_hh = model.lstm.weight_ih_l0, model.lstm.weight_hh_l0
    # kernel (8, 64): limit sqrt(6 / (8 + 64)) = sqrt(1/12) = 0.288675 (per gate it would be sqrt(6/24) = 0.5)
    # recurrent (16, 64): limit sqrt(6 / (16 + 64)) = 0.273861 (per gate sqrt(6/32) = 0.433013)
    assert w_ih.abs().max().item() <= 0.288675 and w_ih.abs().max().item() > 0.9 * 0.288675
    assert w_hh.abs().max().item() <= 0.273861 and w_hh.abs().max().item() > 0.9 * 0.273861
    assert model.lstm.bias_ih_l0.tolist() == [0.0] * 16 + [1.0] * 16 + [0.0] * 32
    assert model.lstm.bias_hh_l0.abs().sum().item() == 0.0


# ---- RetinaNet (docs/experiments.md §7.2): focal (alpha 0.25, gamma 2) + smooth-L1 (beta 0.1), normalised by #positives; hand-computed ----

# Focal term of one (anchor, class) cell: alpha_t * (1 - p_t)^2 * BCE, alpha_t = 0.25 (target 1) / 0.75 (target 0).
# Logit 0 (p = 0.5):  target 1 -> 0.25 * 0.5^2 * ln2 = 0.0433217;  target 0 -> 0.75 * 0.5^2 * ln2 = 0.1299651

LN2 = 0.6931471805599453  # ln 2


LN3 = 1.0986122886681098  # ln 3


def test_focal_loss_single_image_with_ignore_anchor():
    cls_logits = torch.tensor([[[LN3, LN3], [-LN3, 0.0], [5.0, -5.0]]])  # (B=1, A=3, C=2)
    cls_target = torch.tensor([[1, -1, -2]])  # positive (class 1), background, ignore
    box = torch.zeros(1, 3, 4)
    focal, smooth = retinanet_loss(cls_logits, box, cls_target, box)
    # anchor 0 (positive, class 1), p = sigmoid(ln3) = 0.75 for both classes:
    #   class 0, target 0: p_t = 0.25 -> 0.75 * 0.75^2 * -ln 0.25 = 0.75 * 0.5625 * 1.3862944 = 0.5848429
    #   class 1, target 1: p_t = 0.75 -> 0.25 * 0.25^2 * -ln 0.75 = 0.25 * 0.0625 * 0.2876821 = 0.0044950
    # anchor 1 (background): class 0 p = sigmoid(-ln3) = 0.25, p_t = 0.75 -> 0.75 * 0.0625 * 0.2876821 = 0.0134851
    #                        class 1 p = 0.5 -> 0.1299651
    # anchor 2 (ignore, label -2): excluded, however wrong its logits
    # sum / #positives = (0.5848429 + 0.0044950 + 0.0134851 + 0.1299651) / 1 = 0.7327882
    assert focal.item() == pytest.approx(0.7327882, abs=1e-6)
    assert smooth.item() == 0.0


def test_focal_loss_normalised_per_image_then_averaged_over_batch():
    cls_logits = torch.zeros(2, 3, 2)  # every p = 0.5
    cls_target = torch.tensor([[0, 0, -1],  # image 0: two positives (class 0) + one background
                               [1, -2, -2]])  # image 1: one positive (class 1) + two ignored
    box = torch.zeros(2, 3, 4)
    focal, _ = retinanet_loss(cls_logits, box, cls_target, box)
    # positive anchor: one target-1 cell + one target-0 cell = 0.0433217 + 0.1299651 = 0.1732868
    # background anchor: two target-0 cells = 2 * 0.1299651 = 0.2599302
    # image 0: (2 * 0.1732868 + 0.2599302) / 2 positives = 0.3032519;  image 1: 0.1732868 / 1 = 0.1732868
    # batch mean = (0.3032519 + 0.1732868) / 2 = 0.2382693   (pooled over the batch it would be 0.7797906 / 3)
    assert focal.item() == pytest.approx(0.2382693, abs=1e-6)


def test_focal_loss_of_bf16_head_outputs_is_computed_in_fp32():
    # profile.precision=bf16 autocasts the heads, so the loss receives bf16 logits; it used to build its one-hot
    # target in their dtype and fail ("Index put requires the source and destination dtypes match", seen on an
    # H200 in make bench-gpu). Logit 0 and +-ln3 are exact enough in bf16 (ln3 -> 1.1015625) for the same sums.
    cls_logits = torch.tensor([[[LN3, LN3], [-LN3, 0.0], [5.0, -5.0]]])
    cls_target = torch.tensor([[1, -1, -2]])
    box = torch.zeros(1, 3, 4)
    focal, smooth = retinanet_loss(cls_logits.bfloat16(), box.bfloat16(), cls_target, box)
    assert focal.dtype == smooth.dtype == torch.float32
    expected = retinanet_loss(cls_logits.bfloat16().float(), box, cls_target, box)[0]
    assert focal.item() == pytest.approx(expected.item(), abs=1e-7)
    assert focal.item() == pytest.approx(0.7327882, abs=2e-3)  # the fp32 test above, to bf16's precision


def test_focal_loss_without_positives_divides_by_one():
    # code convention: #positives is clamped to >= 1 (the authors' TF code would divide by 0 here)
    focal, smooth = retinanet_loss(torch.zeros(1, 1, 2), torch.ones(1, 1, 4), torch.tensor([[-1]]),
                                   torch.zeros(1, 1, 4))
    # one background anchor, two target-0 cells: 2 * 0.1299651 = 0.2599302; no positive -> no box loss
    assert focal.item() == pytest.approx(0.2599302, abs=1e-6)
    assert smooth.item() == 0.0


def test_smooth_l1_beta_positives_only_and_batch_mean():
    cls_target = torch.tensor([[0, 0, -1, -2], [0, -1, -1, -1]])
    box_target = torch.zeros(2, 4, 4)
    box_reg = torch.zeros(2, 4, 4)
    box_reg[0, 0] = torch.tensor([0.05, -0.3, 0.0, 1.0])
    box_reg[0, 1] = torch.tensor([0.0, 0.0, 0.1, 0.0])
    box_reg[0, 2] = 3.0  # background: no box loss
    box_reg[0, 3] = 3.0  # ignored: no box loss
    box_reg[1, 0] = torch.tensor([0.0, 0.0, 0.0, -0.02])
    box_reg[1, 1:] = -2.0  # background
    _, smooth = retinanet_loss(torch.zeros(2, 4, 1), box_reg, cls_target, box_target)
    # smooth-L1(d) = 0.5 d^2 / 0.1 if |d| < 0.1 else |d| - 0.05
    # image 0, anchor 0: 0.5 * 0.0025 / 0.1 = 0.0125;  0.3 - 0.05 = 0.25;  0;  1 - 0.05 = 0.95  -> 1.2125
    #          anchor 1: |0.1| = beta -> 0.1 - 0.05 = 0.05                                     -> 0.05
    #          summed over the 4 coordinates, divided by 2 positive anchors: 1.2625 / 2 = 0.63125
    # image 1, anchor 0: 0.5 * 0.0004 / 0.1 = 0.002, / 1 positive = 0.002
    # batch mean = (0.63125 + 0.002) / 2 = 0.316625
    assert smooth.item() == pytest.approx(0.316625, abs=1e-6)


def test_encode_targets_thresholds_and_box_deltas():
    # IoU with the authors' +1 pixel areas (docs/experiments.md §7.2): the gt box covers 11 x 11 = 121 pixels
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0],  # IoU 1
                            [20.0, 20.0, 30.0, 30.0],  # IoU 0
                            [0.0, 0.0, 10.0, 14.0],  # IoU 121 / (11 * 15) = 0.733 > 0.5
                            [0.0, 0.0, 10.0, 22.0]])  # IoU 121 / (11 * 23) = 0.478 in (0.4, 0.5]
    cls, reg = encode_targets(anchors, torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([5]))
    assert cls.tolist() == [5, -1, 5, -2]
    # anchor 2: dx1 = (0 - 0) / 10, dy1 = (0 - 0) / 14, log(10 / 10) = 0, log(10 / 14) = -0.3364722
    # anchors 0: all zero (same box); 1 and 3: not positive -> zeroed
    expected = [[0.0] * 4, [0.0] * 4, [0.0, 0.0, 0.0, -0.3364722], [0.0] * 4]
    assert reg.flatten().tolist() == pytest.approx(sum(expected, []), abs=1e-6)


def test_encode_targets_forces_each_objects_best_anchor_positive():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 25.0],  # IoU 0.321 (below): background by threshold, but best
                            [50.0, 50.0, 60.0, 60.0]])
    cls, reg = encode_targets(anchors, torch.tensor([[2.0, 5.0, 12.0, 15.0]]), torch.tensor([7]))
    # gt = [2, 5, 12, 15] vs anchor [0, 0, 10, 25], +1 pixel areas: inter = (10 - 2 + 1) * (15 - 5 + 1) = 99,
    # union = 11 * 11 + 11 * 26 - 99 = 308 -> 0.321
    # still the best anchor -> forced to 0.99 -> positive with label 7
    assert cls.tolist() == [7, -1]
    # dx1 = (2 - 0) / 10 = 0.2, dy1 = (5 - 0) / 25 = 0.2, log(10 / 10) = 0, log(10 / 25) = -0.9162907
    assert reg[0].tolist() == pytest.approx([0.2, 0.2, 0.0, -0.9162907], abs=1e-6)
    assert reg[1].tolist() == [0.0, 0.0, 0.0, 0.0]


# ---- anchor IoU with the +1 pixel convention ----

def test_iou_plus_one_of_hand_drawn_boxes():
    """docs/experiments.md §7.2 (authors' AnchorBox._get_iou): areas (x2 - x1 + 1)(y2 - y1 + 1), intersection
    (min x2 - max x1 + 1) per side, clipped at 0."""
    from experiments.tasks.retinanet import iou_plus_one

    a = torch.tensor([[0.0, 0.0, 9.0, 9.0]])
    b = torch.tensor([[5.0, 5.0, 14.0, 14.0],  # areas 10*10 = 100 each, overlap 5*5 = 25: 25 / 175 = 0.1428571
                      [9.0, 9.0, 18.0, 18.0],  # corners touch: overlap 1*1 = 1: 1 / 199 = 0.0050251
                      [11.0, 0.0, 20.0, 9.0],  # a gap of 2 px: 9 - 11 + 1 = -1 -> 0
                      [0.0, 0.0, 9.0, 9.0]])  # the same box: 1
    assert iou_plus_one(a, b).flatten().tolist() == pytest.approx([25 / 175, 1 / 199, 0.0, 1.0], abs=1e-7)


def test_anchor_targets_use_the_plus_one_iou():
    """gt [0, 0, 10, 10] vs anchor [0, 0, 10, 20]: without the +1, 100 / 200 = 0.5 (ignored, 0.4 < IoU <= 0.5);
    with it, 11*11 = 121 over 121 + 11*21 - 121 = 231: 0.5238 > 0.5, positive. Anchor [0, 0, 10, 10] is the best."""
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 20.0]])
    cls, _ = encode_targets(anchors, torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([3]))
    assert cls.tolist() == [3, 3]
