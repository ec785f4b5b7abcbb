"""Hand-computed checks of the loss formulas and the proxy-network arithmetic.

Every expected constant below was worked out by hand (the arithmetic is in the comment next to it); none is
obtained by running the code under test. Inputs are tiny so the arithmetic stays checkable.

Covered: ECC hinge of task 2 (SvhnEcc), FGSM mix of task 3 (SvhnAdversarial), Kendall uncertainty weighting of
task 6 (Cub200MultiTask / TinyMultiTask), soft / hard Dice (tasks 11-12), RetinaNet focal + smooth-L1 loss and
anchor-target encoding (docs/experiments.md §7.2), and the WideResNet proxy (docs/experiments.md §6).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from datagen.tasks.segmentation import Cub200MultiTask, Cub200UNet, TinyMultiTask, hard_dice, soft_dice
from datagen.tasks.vision import SvhnAdversarial, SvhnEcc
from experiments.tasks.retinanet import encode_targets, retinanet_loss
from selection.proxy import Block, WideResNet

LN2 = 0.6931471805599453  # ln 2
LN3 = 1.0986122886681098  # ln 3


class Fixed(nn.Module):
    """Stand-in model whose output is a fixed tensor (ignores its input)."""

    def __init__(self, *outputs: torch.Tensor):
        super().__init__()
        self.outputs = outputs

    def forward(self, x):
        return self.outputs[0] if len(self.outputs) == 1 else self.outputs


# ---------------------------------------------------------------------------------------------------------------
# 1. Task 2: VGG16 + error-correcting output codes, hinge loss
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ecc_task():
    return SvhnEcc(source="standin", n_train=1, n_eval=1, batch_size=1)


def test_ecc_codebook_matches_fastestimator_hadamard_op(ecc_task):
    """FE 1.7.0 op/numpyop/univariate/hadamard.py: labels = hadamard(16); labels[0::2, 0] = -1; labels[:10]."""
    codes = ecc_task.codes
    assert codes.shape == (10, 16)
    # Sylvester Hadamard: H16[i, j] = (-1)^popcount(i & j); class k gets row k, column 0 flipped to -1 on even rows.
    assert codes[0].tolist() == [-1] + [1] * 15  # row 0 (all ones) with column 0 flipped
    assert codes[1].tolist() == [1, -1] * 8  # row 1 (odd row: unchanged)
    assert codes[2].tolist() == [-1, 1, -1, -1] + [1, 1, -1, -1] * 3  # row 2 with column 0 flipped
    # row 9 = 0b1001 (odd: unchanged): popcount(9 & j) for j = 0..15 = 0,1,0,1,0,1,0,1,1,2,1,2,1,2,1,2
    assert codes[9].tolist() == [1, -1] * 4 + [-1, 1] * 4
    # column 0 alternates -1, +1 over the classes; every other column is the plain Hadamard column
    assert codes[:, 0].tolist() == [-1.0, 1.0] * 5


def test_ecc_hinge_loss_and_nearest_codeword_accuracy(ecc_task):
    codes = ecc_task.codes
    y = torch.tensor([0, 3])
    out = torch.stack([0.5 * codes[0], codes[3].clone()])
    out[1, 5] = -0.5 * codes[3, 5]  # one bit of sample 1 on the wrong side of the margin
    loss, acc = ecc_task.step(Fixed(out), (torch.zeros(2, 1), y))
    # sample 0: every bit relu(1 - c * 0.5c) = relu(1 - 0.5) = 0.5                      -> 16 * 0.5 = 8
    # sample 1: 15 bits relu(1 - c*c) = 0, bit 5 relu(1 - c * (-0.5c)) = 1.5             -> 1.5
    # mean over 2 x 16 elements (= FE hinge: mean over code, then over batch): (8 + 1.5) / 32 = 0.296875
    assert loss.item() == pytest.approx(0.296875, abs=1e-7)
    # nearest codeword by correlation: sample 0 -> 0.5*16 = 8 with code 0, 0 with the others (orthogonal);
    # sample 1 -> 15 - 0.5 = 14.5 with code 3, |-1.5| with the others -> both correct, accuracy 1.0
    assert acc == 1.0


def test_ecc_hinge_has_a_margin_not_a_squared_error(ecc_task):
    codes = ecc_task.codes
    y = torch.tensor([1, 2])
    # outputs beyond the margin (|out| = 2 on the right side) cost nothing: relu(1 - 2) = 0
    loss, _ = ecc_task.step(Fixed(2 * codes[y]), (torch.zeros(2, 1), y))
    assert loss.item() == 0.0
    # all-zero outputs: relu(1 - 0) = 1 per bit -> mean 1.0; fully wrong outputs: relu(1 + 1) = 2 -> 2.0
    loss, _ = ecc_task.step(Fixed(torch.zeros(2, 16)), (torch.zeros(2, 1), y))
    assert loss.item() == pytest.approx(1.0)
    loss, acc = ecc_task.step(Fixed(-codes[y]), (torch.zeros(2, 1), y))
    assert loss.item() == pytest.approx(2.0)
    assert acc == 0.0  # correlation -16 with the true code, 0 with the others


# ---------------------------------------------------------------------------------------------------------------
# 2. Task 3: FGSM adversarial training, loss = (clean CE + adversarial CE) / 2
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def adv_task():
    return SvhnAdversarial(source="standin", n_train=1, n_eval=1, batch_size=1)


def linear(weight) -> nn.Module:
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(weight))
    return model


def test_fgsm_epsilon(adv_task):
    assert adv_task.epsilon == 0.04


def test_fgsm_mix_follows_the_input_gradient_sign(adv_task):
    # W = [[2, 0], [0, -1]], x = [0.5, 0.5], y = 0: logits z = Wx = [1, -0.5]
    # clean CE = log(1 + e^(z1 - z0)) = log(1 + e^-1.5) = 0.2014133
    # dCE/dx = W^T (softmax - e_0) = W^T [-p1, p1] = [2 * -p1, -1 * p1] -> sign [-1, -1]
    # x_adv = x + 0.04 * [-1, -1] = [0.46, 0.46] (inside [0, 1]); z_adv = [0.92, -0.46]
    # adversarial CE = log(1 + e^(-0.46 - 0.92)) = log(1 + e^-1.38) = 0.2244056
    # loss = (0.2014133 + 0.2244056) / 2 = 0.2129094
    # (a step along -grad, or along sign(logit grad) = [-1, +1], would give x_adv = [0.54, 0.54] / [0.46, 0.54]
    #  and a different number.)
    model = linear([[2.0, 0.0], [0.0, -1.0]]).train()
    loss, acc = adv_task.step(model, (torch.tensor([[0.5, 0.5]]), torch.tensor([0])))
    assert loss.item() == pytest.approx(0.2129094, abs=1e-6)
    assert acc == 1.0  # accuracy of the clean logits: argmax [1, -0.5] = 0 = y
    assert loss.requires_grad  # training: the mixed loss is what is back-propagated


def test_fgsm_clamps_to_unit_range_and_averages_batch_means(adv_task):
    # W = I, so z = x and dCE/dx = softmax(x) - e_y.
    # sample a: x = [0.02, 0.99], y = 0: grad sign [-1, +1] -> x + 0.04 sign = [-0.02, 1.03] -> clamp [0, 1]
    #   clean CE = log(1 + e^(0.99 - 0.02)) = log(1 + e^0.97) = 1.2914188
    #   adv   CE = log(1 + e^(1 - 0))       = log(1 + e^1)    = 1.3132617  (unclamped would be e^1.05: 1.3500585)
    # sample b: x = [0.5, 0.2], y = 1: grad sign [+1, -1] -> x_adv = [0.54, 0.16]
    #   clean CE = log(1 + e^(0.5 - 0.2)) = log(1 + e^0.3)  = 0.8543552
    #   adv   CE = log(1 + e^(0.54 - 0.16)) = log(1 + e^0.38) = 0.9010896
    # loss = ((1.2914188 + 0.8543552) / 2 + (1.3132617 + 0.9010896) / 2) / 2 = 1.0900313
    x, y = torch.tensor([[0.02, 0.99], [0.5, 0.2]]), torch.tensor([0, 1])
    model = linear([[1.0, 0.0], [0.0, 1.0]]).train()
    loss, _ = adv_task.step(model, (x, y))
    assert loss.item() == pytest.approx(1.0900313, abs=1e-6)
    # eval uses the same mixed loss (the validation loss that labels a data point), detached
    loss_eval, _ = adv_task.step(model.eval(), (x, y))
    assert loss_eval.item() == pytest.approx(1.0900313, abs=1e-6)
    assert not loss_eval.requires_grad


# ---------------------------------------------------------------------------------------------------------------
# 3. Task 6: Kendall et al. uncertainty weighting  sum_i exp(-s_i) L_i + s_i
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def multitask():
    return Cub200MultiTask(source="standin", n_train=1, n_eval=1, batch_size=1, image_size=4)


def known_multitask_net(log_var) -> TinyMultiTask:
    """TinyMultiTask with zero weights: class logits = bias [ln2, 0, 0], mask logits = ln3 everywhere."""
    model = TinyMultiTask(width=2, classes=3)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.classify[-1].bias.copy_(torch.tensor([LN2, 0.0, 0.0]))
        model.segment[-1].bias.fill_(LN3)
        model.log_var.copy_(torch.tensor(log_var))
    return model


CHECKER = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]] * 2).reshape(1, 1, 4, 4)  # 8 ones, 8 zeros


def test_tiny_multitask_log_variances_start_at_zero_and_are_learned():
    model = TinyMultiTask(width=2, classes=3)
    assert torch.equal(model.log_var.detach(), torch.zeros(2))  # sigma^2 = 1: plain sum at initialisation
    assert any(p is model.log_var for p in model.parameters())  # saved with the model (trained by their own Adam)
    assert model.fixed_lr_parameters() == [("adam", 1e-5, [model.log_var])]


def test_kendall_weighted_loss_value(multitask):
    model = known_multitask_net([0.5, -1.0])
    loss, acc = multitask.step(model, (torch.zeros(1, 3, 4, 4), torch.tensor([0]), CHECKER))
    # class CE: softmax([ln2, 0, 0]) = [2/4, 1/4, 1/4], y = 0 -> L1 = -ln(1/2) = ln 2 = 0.6931472
    # mask BCE: p = sigmoid(ln3) = 0.75; 8 pixels of 1 -> -ln 0.75 = 0.2876821, 8 of 0 -> -ln 0.25 = 1.3862944
    #   L2 = (0.2876821 + 1.3862944) / 2 = 0.8369882
    # loss = e^-0.5 * 0.6931472 + 0.5 + e^1 * 0.8369882 + (-1)
    #      = 0.6065307 * 0.6931472 + 0.5 + 2.7182818 * 0.8369882 - 1 = 0.4204150 + 0.5 + 2.2751699 - 1 = 2.1955849
    assert loss.item() == pytest.approx(2.1955849, abs=1e-5)
    assert acc == 1.0


def test_kendall_log_variance_gradient_and_optimum(multitask):
    batch = (torch.zeros(1, 3, 4, 4), torch.tensor([0]), CHECKER)
    model = known_multitask_net([0.0, 0.0])
    loss, _ = multitask.step(model, batch)
    # s = 0: loss = L1 + L2 = 0.6931472 + 0.8369882 = 1.5301354
    assert loss.item() == pytest.approx(1.5301354, abs=1e-5)
    loss.backward()
    # d/ds (e^-s L + s) = 1 - e^-s L = 1 - L at s = 0 -> [1 - 0.6931472, 1 - 0.8369882] = [0.3068528, 0.1630118]
    assert model.log_var.grad.tolist() == pytest.approx([0.3068528, 0.1630118], abs=1e-5)
    # the optimum is s_i = ln L_i (sigma_i^2 = L_i): ln 0.6931472 = -0.3665129, ln 0.8369882 = -0.1779453
    model = known_multitask_net([-0.3665129, -0.1779453])
    loss, _ = multitask.step(model, batch)
    loss.backward()
    assert model.log_var.grad.tolist() == pytest.approx([0.0, 0.0], abs=1e-5)
    # value there: sum_i (1 + ln L_i) = 2 - 0.3665129 - 0.1779453 = 1.4555418
    assert loss.item() == pytest.approx(1.4555418, abs=1e-5)


def test_task6_log_variances_train_at_their_own_adam_1e5_whatever_the_runs_lr(multitask):
    """FE apphub task 6: UncertaintyLossNet has its own Adam(lr=1e-5) and the LR schedule acts on the ResUnet50 alone.
    Keras' Adam's first step (core.optim.KerasAdam) moves each weight by lr sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps)
    = lr * g / (|g| + eps / sqrt(1 - b2)) = lr * g / (|g| + 3.1622777e-6)."""
    from core.optim import WithFixedLR, build_optimizer, get_lr, optimizer_factory, set_lr

    model = known_multitask_net([0.0, 0.0])
    optimizer = build_optimizer(optimizer_factory("sgd"), model, 0.1)
    assert isinstance(optimizer, WithFixedLR)
    set_lr(optimizer, 0.5)  # what ARC / datagen's branches do
    assert get_lr(optimizer) == 0.5 and optimizer.fixed[0].param_groups[0]["lr"] == 1e-5
    assert all(p is not model.log_var for g in optimizer.param_groups for p in g["params"])
    optimizer.zero_grad()
    loss, _ = multitask.step(model, (torch.zeros(1, 3, 4, 4), torch.tensor([0]), CHECKER))
    loss.backward()
    # log-variance gradient (the test above): [0.3068528, 0.1630118]; the class bias gradient is e^0 (softmax - onehot) =
    # [2/4 - 1, 1/4, 1/4] = [-0.5, 0.25, 0.25]
    optimizer.step()
    # log_var: -1e-5 * 0.3068528 / 0.30685596 = -9.999897e-06, and -1e-5 * 0.1630118 / 0.16301496 = -9.999806e-06
    # (torch's Adam, eps after the bias correction: -9.999997e-06 and -9.999994e-06)
    assert model.log_var.tolist() == pytest.approx([-9.999897e-06, -9.999806e-06], rel=1e-6)
    # the class bias [ln 2, 0, 0] by plain SGD at the run's LR 0.5: - 0.5 * [-0.5, 0.25, 0.25]
    assert model.classify[-1].bias.tolist() == pytest.approx([LN2 + 0.25, -0.125, -0.125], abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# 4. Dice (task 12 loss = 1 - soft dice; hard dice metric of tasks 11-12)
# ---------------------------------------------------------------------------------------------------------------

DICE_LOGITS = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]], [[[LN3, LN3], [LN3, LN3]]]])
DICE_MASK = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])


def test_soft_dice_is_per_image_then_batch_mean():
    # image 0: p = sigmoid(0) = 0.5 everywhere, mask has one pixel:
    #   (2 * 0.5 + eps) / (4 * 0.5 + 1 + eps) = (1 + 1e-6) / (3 + 1e-6) = 0.3333336
    # image 1: p = sigmoid(ln3) = 0.75 everywhere, mask all ones:
    #   (2 * 4 * 0.75 + eps) / (3 + 4 + eps) = (6 + 1e-6) / (7 + 1e-6) = 0.8571429
    # mean = (0.3333336 + 0.8571429) / 2 = 0.5952382  (a pooled dice would be 2 * 3.5 / (5 + 5) = 0.7)
    assert soft_dice(DICE_LOGITS, DICE_MASK).item() == pytest.approx(0.5952382, abs=1e-6)


def test_soft_dice_empty_mask_and_empty_prediction_is_one():
    # p = sigmoid(-30) = 9.4e-14 per pixel: (0 + 1e-6) / (4 * 9.4e-14 + 0 + 1e-6) = 0.9999996
    assert soft_dice(torch.full((1, 1, 2, 2), -30.0), torch.zeros(1, 1, 2, 2)).item() == pytest.approx(1.0, abs=1e-5)


def test_hard_dice_thresholds_at_zero_logit():
    logits = torch.tensor([[[[2.0, -3.0], [-1.0, 0.5]]]])
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    # prediction (logit > 0) = [[1, 0], [0, 1]]: overlap 1, |pred| 2, |mask| 2 -> 2 * 1 / (2 + 2) = 0.5
    assert hard_dice(logits, mask) == pytest.approx(0.5, abs=1e-6)


def test_cub200_unet_loss_is_one_minus_soft_dice():
    task = Cub200UNet(source="standin", n_train=1, n_eval=1, batch_size=1, image_size=2)
    loss, _ = task.step(Fixed(DICE_LOGITS), (torch.zeros(2, 3, 2, 2), DICE_MASK))
    # 1 - 0.5952382 (see test_soft_dice_is_per_image_then_batch_mean) = 0.4047618
    assert loss.item() == pytest.approx(0.4047618, abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# 5. RetinaNet (docs/experiments.md §7.2): focal (alpha 0.25, gamma 2) + smooth-L1 (beta 0.1), normalised by #positives
# ---------------------------------------------------------------------------------------------------------------
# Focal term of one (anchor, class) cell: alpha_t * (1 - p_t)^2 * BCE, alpha_t = 0.25 (target 1) / 0.75 (target 0).
# Logit 0 (p = 0.5):  target 1 -> 0.25 * 0.5^2 * ln2 = 0.0433217;  target 0 -> 0.75 * 0.5^2 * ln2 = 0.1299651

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


# ---------------------------------------------------------------------------------------------------------------
# 6. WideResNet proxy (docs/experiments.md §6)
# ---------------------------------------------------------------------------------------------------------------

def set_conv(conv: nn.Conv2d, weight) -> None:
    """Known kernel, zero bias (the authors' Keras Conv2D layers all have a bias)."""
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(weight, dtype=torch.float32).reshape(conv.weight.shape))
        if conv.bias is not None:
            conv.bias.zero_()


def set_bn(bn: nn.BatchNorm2d, mean, var, gamma, beta) -> None:
    """Eval-mode BN with known statistics and eps = 0: y = gamma * (x - mean) / sqrt(var) + beta."""
    with torch.no_grad():
        bn.running_mean.fill_(mean)
        bn.running_var.fill_(var)
        bn.weight.fill_(gamma)
        bn.bias.fill_(beta)
    bn.eps = 0.0


def centre(*values) -> torch.Tensor:
    """3x3 kernels that are zero except the centre tap (a per-pixel multiply under padding 1)."""
    k = torch.zeros(len(values), 3, 3)
    k[:, 1, 1] = torch.tensor(values)
    return k


def block_layers(block: Block):
    """The branch is conv-BN-ReLU twice (docs/experiments.md §6; authors' __conv2_block)."""
    conv1, bn1, relu1, conv2, bn2, relu2 = block.body
    assert isinstance(relu1, nn.ReLU) and isinstance(relu2, nn.ReLU)
    return conv1, bn1, conv2, bn2


def test_block_identity_shortcut_arithmetic():
    block = Block(1, 1).eval()
    conv1, bn1, conv2, bn2 = block_layers(block)
    assert isinstance(block.shortcut, nn.Identity)
    set_conv(conv1, torch.ones(3, 3))
    set_conv(conv2, torch.ones(3, 3))
    set_bn(bn1, mean=2.0, var=4.0, gamma=0.5, beta=1.0)
    set_bn(bn2, mean=0.0, var=9.0, gamma=1.0, beta=0.5)
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    # all-ones 3x3 kernel, padding 1, 2x2 input: every window covers all 4 pixels -> conv1 = 1+2+3+4 = 10
    # BN1: 0.5 * (10 - 2) / 2 + 1 = 3; ReLU -> 3;  conv2: 4 * 3 = 12;  BN2: 12 / 3 + 0.5 = 4.5
    # + identity shortcut: [[5.5, 6.5], [7.5, 8.5]] (all positive, so ReLU placement does not matter here)
    assert block(x).flatten().tolist() == pytest.approx([5.5, 6.5, 7.5, 8.5], abs=1e-6)


def test_block_projection_shortcut_is_1x1_conv():
    block = Block(1, 2).eval()
    conv1, bn1, conv2, bn2 = block_layers(block)
    assert isinstance(block.shortcut, nn.Conv2d)
    assert block.shortcut.kernel_size == (1, 1) and block.shortcut.stride == (1, 1)
    set_conv(conv1, centre(1.0, 2.0))  # channel 0 = x, channel 1 = 2x
    w2 = torch.zeros(2, 2, 3, 3)
    w2[0, 0, 1, 1] = w2[1, 1, 1, 1] = 1.0  # channel-wise identity
    set_conv(conv2, w2)
    set_bn(bn1, 0.0, 1.0, 1.0, 0.0)
    set_bn(bn2, 0.0, 1.0, 1.0, 0.0)
    set_conv(block.shortcut, [3.0, 0.5])
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    # channel 0: body x + shortcut 3x = 4x;  channel 1: body 2x + shortcut 0.5x = 2.5x
    assert block(x).shape == (1, 2, 2, 2)
    assert block(x).flatten().tolist() == pytest.approx([4.0, 8.0, 12.0, 16.0, 2.5, 5.0, 7.5, 10.0], abs=1e-6)
    # the linear 1x1 shortcut has a bias (Keras Conv2D default): +1 on channel 0, -1 on channel 1
    with torch.no_grad():
        block.shortcut.bias.copy_(torch.tensor([1.0, -1.0]))
    assert block(x).flatten().tolist() == pytest.approx([5.0, 9.0, 13.0, 17.0, 1.5, 4.0, 6.5, 9.0], abs=1e-6)


def test_block_relu_placement_per_spec():
    block = Block(1, 1).eval()
    conv1, bn1, conv2, bn2 = block_layers(block)
    set_conv(conv1, centre(2.0))
    set_conv(conv2, centre(1.0))
    set_bn(bn1, mean=1.0, var=4.0, gamma=1.0, beta=0.0)
    set_bn(bn2, mean=0.0, var=1.0, gamma=1.0, beta=-1.0)
    x = torch.tensor([[[[1.0, -2.0], [3.0, -4.0]]]])
    # conv1: 2x = [[2, -4], [6, -8]]; BN1: (2x - 1) / 2 = [[0.5, -2.5], [2.5, -4.5]]; ReLU: [[0.5, 0], [2.5, 0]]
    # conv2: same; BN2: -1 -> [[-0.5, -1], [1.5, -1]]; ReLU (docs/experiments.md §6: conv-BN-ReLU x2): [[0, 0], [1.5, 0]]
    # + x: [[1, -2], [4.5, -4]]      (the code's relu(h + x) gives [[0.5, 0], [4.5, 0]])
    assert block(x).flatten().tolist() == pytest.approx([1.0, -2.0, 4.5, -4.0], abs=1e-6)


def stages(model: WideResNet):
    """Split model.features after the stem (conv, BN, ReLU) at the MaxPool layers."""
    layers = list(model.features)
    assert isinstance(layers[0], nn.Conv2d) and isinstance(layers[1], nn.BatchNorm2d)
    assert isinstance(layers[2], nn.ReLU)
    out, current = [], []
    for layer in layers[3:]:
        if isinstance(layer, nn.MaxPool2d):
            assert layer.kernel_size == 2 and layer.stride == 2
            out.append(current)
            current = []
        else:
            assert isinstance(layer, Block)
            current.append(layer)
    return out + [current]


def widths(block: Block):
    conv1 = block.body[0]
    return conv1.in_channels, conv1.out_channels, isinstance(block.shortcut, nn.Conv2d)


def test_wrn_28_2_structure():
    model = WideResNet(depth=28, width=2)
    assert model.features[0].in_channels == 3 and model.features[0].out_channels == 16  # stem 3x3 conv to 16
    s = stages(model)
    # N = (28 - 4) / 6 = 4 blocks per stage, widths 16k / 32k / 64k = 32 / 64 / 128, MaxPool(2) between stages;
    # a 1x1 projection only where the channel count changes (first block of each stage)
    assert [[widths(b) for b in stage] for stage in s] == [
        [(16, 32, True)] + [(32, 32, False)] * 3,
        [(32, 64, True)] + [(64, 64, False)] * 3,
        [(64, 128, True)] + [(128, 128, False)] * 3]
    assert (model.head.in_features, model.head.out_features) == (128, 10)


def test_wrn_10_1_structure():
    model = WideResNet(depth=10, width=1, in_channels=1)
    # N = (10 - 4) / 6 = 1 block per stage; stage 1 keeps the stem's 16 channels -> identity shortcut
    assert [[widths(b) for b in stage] for stage in stages(model)] == [[(16, 16, False)], [(16, 32, True)],
                                                                      [(32, 64, True)]]
    with pytest.raises(ValueError):
        WideResNet(depth=12, width=1)  # 12 - 4 = 8 is not a multiple of 6


def test_wrn_head_is_global_average_pool_then_linear():
    model = WideResNet(depth=10, width=1)
    model.features = nn.Identity()  # feed the head a known 64-channel 2x2 map
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.weight[0, 0] = 1.0
        model.head.weight[1, 0] = -2.0
        model.head.bias.zero_()
        model.head.bias[1] = 0.5
    x = torch.zeros(1, 64, 2, 2)
    x[0, 0] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    # GAP of channel 0 = (1 + 2 + 3 + 4) / 4 = 2.5 (a global max pool would give 4)
    # logit 0 = 1 * 2.5 = 2.5; logit 1 = -2 * 2.5 + 0.5 = -4.5; the other 8 logits = 0
    assert model(x).flatten().tolist() == pytest.approx([2.5, -4.5] + [0.0] * 8, abs=1e-6)


def test_wrn_parameter_counts():
    # every conv has a bias (Keras Conv2D default, authors' wideresnet_svhn.py), the 1x1 projection too; BN has
    # gamma + beta = 2c trainable parameters (its moving mean / variance are buffers).
    # WRN-10-1, 3 input channels, 10 classes:
    #   stem: 3*16*9 + 16 + 2*16                              =   432 + 16 + 32          =   480
    #   stage 1, Block(16,16): 2 * (16*16*9 + 16 + 2*16)      = 2 * 2352                 =  4704
    #   stage 2, Block(16,32): 16*32*9 + 32 + 64 + 32*32*9 + 32 + 64 + (16*32 + 32) (1x1)
    #                        = 4640 + 64 + 9248 + 64 + 544                               = 14560
    #   stage 3, Block(32,64): 32*64*9 + 64 + 128 + 64*64*9 + 64 + 128 + (32*64 + 64)
    #                        = 18496 + 128 + 36928 + 128 + 2112                          = 57792
    #   head: 64*10 + 10                                                                 =   650
    #   total: 480 + 4704 + 14560 + 57792 + 650                                          = 78186
    assert sum(p.numel() for p in WideResNet(depth=10, width=1).parameters()) == 78186
    # WRN-28-2 (docs/experiments.md §6 model), 4 blocks per stage:
    #   stem 480
    #   stage 1: Block(16,32) = 4640 + 64 + 9248 + 64 + 544 = 14560; 3 x Block(32,32) = 3 * 2 * (9216 + 32 + 64) = 55872
    #   stage 2: Block(32,64) = 57792;  3 x Block(64,64) = 3 * 2 * (36864 + 64 + 128) = 222336
    #   stage 3: Block(64,128) = (73728 + 128) + 256 + (147456 + 128) + 256 + (8192 + 128) = 230272;
    #            3 x Block(128,128) = 3 * 2 * (147456 + 128 + 256) = 887040
    #   head: 128*10 + 10 = 1290
    #   total: 480 + 14560 + 55872 + 57792 + 222336 + 230272 + 887040 + 1290 = 1469642
    #   (= the Keras model's trainable parameters; without the conv biases it was 1467610, 2032 fewer)
    assert sum(p.numel() for p in WideResNet(depth=28, width=2).parameters()) == 1469642
