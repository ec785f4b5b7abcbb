"""Selection stage: the proxy WideResNet (its block and network arithmetic worked out by hand), CoarseDropout, and
`python -m selection` on smoke."""
from __future__ import annotations

import filecmp

import pandas as pd
import pytest
import torch
from torch import nn

from arc_model.network import ARCNet
from arc_model.weights import save_keras_h5
from conftest import run_module
from core.artifacts import mark_done, read_done
from selection.proxy import Block, WideResNet, coarse_dropout
from selection.select import score_table


def test_wrn_28_2_paper_shape_trains_two_steps():
    model = WideResNet(depth=28, width=2)
    assert sum(len(stage) for stage in [model.features]) == 3 + 3 * 4 + 2  # stem, 12 blocks, 2 pools
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([1, 7])
    for _ in range(2):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    assert model(x).shape == (2, 10) and torch.isfinite(loss)


def test_coarse_dropout_zeroes_one_hole_per_image():
    x = torch.ones(64, 3, 32, 32)
    out = coarse_dropout(x, 8, torch.Generator().manual_seed(0))
    zeros = (out == 0).all(dim=1).sum(dim=(1, 2))
    assert (zeros == 64).all()  # one 8x8 hole, all channels
    rows = (out[:, 0] == 0).any(dim=2).float()
    assert (rows.sum(1) == 8).all()  # contiguous 8 rows


def make_candidate(root, name, candidate):
    torch.manual_seed(candidate)
    out = root / "artifacts" / "smoke" / "candidates" / name  # ${paths.candidates}
    out.mkdir(parents=True)
    save_keras_h5(ARCNet(), out / "arc.h5")
    mark_done(out, {"candidate": candidate})
    return out


SCORE = ("selection", "-m", "profile=smoke", "epochs=4", "candidate=1,2")


@pytest.mark.slow
def test_selection_smoke_scores_candidates_and_copies_the_winner(tmp_path):
    first, second = make_candidate(tmp_path, "cand-c1", 1), make_candidate(tmp_path, "cand-c2", 2)
    result = run_module(*SCORE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skip: repeat" not in result.stdout  # the sweep's repeats are the profile's (1 on smoke)
    assert result.stdout.count('"candidate": "') == 2 * 3  # 2 candidates x 3 LR0s x 1 repeat
    picked = run_module("selection.pick", "profile=smoke", cwd=tmp_path)
    assert picked.returncode == 0, picked.stderr[-3000:]
    out = tmp_path / "artifacts" / "smoke" / "selection"
    scores = pd.read_csv(out / "scores.csv")
    assert sorted(scores.candidate.astype(str)) == ["1", "2"] and (scores.runs == 3).all()
    assert (scores.decisions_per_run == 1).all()  # one ARC call (epoch 4) per run
    assert scores.score.is_monotonic_decreasing and scores.score.between(0, 1).all()
    winner = read_done(out)["winner"]
    assert filecmp.cmp(out / "arc.h5", {"cand-c1": first, "cand-c2": second}[winner] / "arc.h5", shallow=False)
    runs = list((out / "runs").glob("*/*/DONE"))
    assert len(runs) == 6
    decisions = [ln for r in runs for ln in (r.parent / "log.txt").read_text().splitlines() if "multiplying lr" in ln]
    assert len(decisions) == 6
    again = run_module(*SCORE, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("done already") == 6


def test_score_table_breaks_ties_by_the_smallest_lr0_then_the_candidate_id():
    rows = pd.DataFrame([{"candidate": c, "run": f"r{c}", "lr0": lr0, "repeat": 0, "best_metric": v, "decisions": 3}
                         for c, values in (("3", (0.9, 0.5)), ("2", (0.8, 0.6)), ("1", (0.8, 0.6)),
                                           ("published", (1.0, 1.0)))
                         for lr0, v in zip((0.1, 1e-5), values)])
    table = score_table(rows, [0.1, 1e-5], repeats=1)
    # equal means 0.7: candidate 2 and 1 have the better smallest-LR0 score (0.6 > 0.5), then id 1 < 2;
    # the published ARC is a labelled row at the end, whatever its score
    assert table.candidate.tolist() == ["1", "2", "3", "published"]
    assert table.score.tolist()[:3] == pytest.approx([0.7, 0.7, 0.7])


@pytest.mark.slow
def test_pick_refuses_candidates_without_all_their_proxy_runs(tmp_path):
    make_candidate(tmp_path, "cand-c1", 1)
    result = run_module("selection.pick", "profile=smoke", cwd=tmp_path)
    assert result.returncode == 2 and "proxy runs missing for cand-c1 (0 of 3 runs)" in result.stderr
    assert not (tmp_path / "artifacts" / "smoke" / "selection").exists()


@pytest.mark.slow
def test_selection_without_candidates_fails_clearly(tmp_path):
    result = run_module("selection", "profile=smoke", "lr0=0.1", cwd=tmp_path)
    assert result.returncode == 2 and "make train_arc" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---- the WideResNet proxy (docs/experiments.md §6; authors' source/proxy_test/wideresnet_svhn.py) ----

def test_wrn_block_is_keras_conv_bn_relu_twice_with_biased_linear_shortcut():
    """docs/experiments.md §6; authors' source/proxy_test/wideresnet_svhn.py __conv2_block: Conv2D (bias, Keras
    default) - BN - ReLU twice, `init + x` with no activation after the add, a linear 1x1 Conv2D shortcut with bias
    when the width changes; Keras BatchNormalization momentum 0.99 (PyTorch 0.01) and epsilon 1e-3."""
    block = Block(16, 32)
    kinds = [type(m) for m in block.body]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert isinstance(block.shortcut, nn.Conv2d) and block.shortcut.kernel_size == (1, 1)
    assert block.shortcut.bias is not None
    for bn in (m for m in WideResNet(depth=10, width=1).modules() if isinstance(m, nn.BatchNorm2d)):
        assert bn.momentum == pytest.approx(0.01) and bn.eps == pytest.approx(1e-3)
    # no ReLU after the add: a branch of zeros (BN beta = -1 then ReLU) passes a negative input through unchanged
    block = Block(1, 1).eval()
    with torch.no_grad():
        block.body[4].bias.fill_(-1.0)
        block.body[4].weight.zero_()
    x = torch.tensor([[[[-3.0, 2.0]]]])
    assert block(x).flatten().tolist() == pytest.approx([-3.0, 2.0])


# hand-computed block and network arithmetic

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
