"""docs/experiments.md §7.4: SLS ran on the authors' PyTorch ports of the three benchmark models, not on the Keras
models of the other schedules. configs/bench_schedule/<task>_sls.yaml selects each task's `variant: sls`: the CIFAR
net with a third residual and torch BatchNorms, the RetinaNet without L2 and with a detached focal weight, the PTB
LSTM at torch's start."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

import experiments.config  # noqa: F401  (registers benchmark_schema)
from core.instantiate import build
from experiments.optimizers import SLS, TaskWithClosure
from experiments.tasks.detection import ShapesTask
from experiments.tasks.images import ResNet9
from experiments.tasks.language import LSTMLanguageModel
from experiments.tasks.retinanet import retinanet_loss

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def bench_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("benchmark", overrides=list(overrides))


@pytest.mark.parametrize("task", ["cifar10", "mscoco", "ptb"])
@pytest.mark.parametrize("profile", ["smoke", "mini", "paper"])
def test_schedule_sls_selects_the_sls_port_and_no_other_schedule_does(task, profile):
    build_node = bench_cfg(f"profile={profile}", f"bench_task={task}", "schedule=sls").bench_task.build
    assert build_node.variant == "sls"
    for schedule in ("constant", "arc", "sc"):
        assert bench_cfg(f"profile={profile}", f"bench_task={task}", f"schedule={schedule}").bench_task.build.get(
            "variant", "keras") == "keras"
    if task == "mscoco" and profile == "paper":  # the port used torchvision's pretrained ResNet50
        assert build_node.backbone == "torchvision_resnet50"


# ---- CIFAR10 -------------------------------------------------------------------------------------------------

def test_cifar_sls_port_has_a_third_residual_and_torch_batchnorms():
    """FastCifar of sls_image_classification.py: 7,756,554 parameters (the Keras ResNet9: 6,575,370) = one more
    residual of two Conv256 + BN: 2 * (256 * 256 * 9 + 256) + 2 * 512 = 1,181,184."""
    keras, port = ResNet9(3, 64), ResNet9(3, 64, variant="sls")
    assert sum(p.numel() for p in keras.parameters()) == 6_575_370
    assert sum(p.numel() for p in port.parameters()) == 7_756_554
    residual_bns = [m for r in port.modules() if type(r).__name__ == "Residual" for m in r.modules()
                    if isinstance(m, nn.BatchNorm2d)]
    layer_bns = [m for m in port.modules() if isinstance(m, nn.BatchNorm2d) and m not in residual_bns]
    assert len(residual_bns) == 6 and len(layer_bns) == 4
    assert all(b.momentum == 0.1 and b.eps == 1e-5 for b in residual_bns)  # torch's defaults
    assert all(b.momentum == 0.8 and b.eps == 1e-5 for b in layer_bns)  # nn.BatchNorm2d(c, momentum=0.8)
    assert all(b.momentum == 0.2 and b.eps == 1e-3 for b in keras.modules() if isinstance(b, nn.BatchNorm2d))


def test_cifar_sls_port_starts_as_torch_does():
    torch.manual_seed(0)
    conv = ResNet9(3, 64, variant="sls").features[0][0]  # torch: bias U(+-1/sqrt(27)); Keras: zero bias
    assert conv.bias.abs().max().item() > 0.05 and conv.bias.abs().max().item() <= 1 / math.sqrt(27)
    assert ResNet9(3, 64).features[0][0].bias.abs().max().item() == 0.0


def test_cifar_stand_in_takes_the_same_switch():
    cfg = bench_cfg("profile=smoke", "bench_task=cifar10", "schedule=sls")
    task = build(cfg.bench_task.build, "bench_task.build")
    model = task.build_model()
    assert sum(type(m).__name__ == "Residual" for m in model.modules()) == 3


# ---- MSCOCO --------------------------------------------------------------------------------------------------

def shapes(variant: str) -> ShapesTask:
    return ShapesTask(n_train=4, n_eval=4, width=4, fpn_width=8, batch_size=4, variant=variant)


def test_coco_sls_closure_has_no_l2_term():
    """sls_instance_detection.py: no kernel_regularizer, so SLS's closure and the Armijo test use total_loss
    alone; the Keras model's objective adds FE's L2 of the FPN and head kernels."""
    for variant in ("keras", "sls"):
        torch.manual_seed(0)
        task = shapes(variant)
        model = task.build_model()
        batch = next(task.train_batches(torch.Generator().manual_seed(0)))
        optimizer = SLS(model.parameters())
        objective, recorded = TaskWithClosure(task, optimizer).train_objective(model, batch)
        closure_value = optimizer._bound[1]()
        if variant == "sls":
            assert objective.item() == pytest.approx(recorded.item())
            assert closure_value.item() == pytest.approx(recorded.item())
        else:
            penalty = model.l2_penalty().item()
            assert penalty > 0
            assert objective.item() == pytest.approx(recorded.item() + penalty)
            assert closure_value.item() == pytest.approx(recorded.item() + penalty)


def test_coco_sls_focal_weight_is_detached():
    """weight=focal_weight.detach(): the gradient is that of sum(w * bce) with w a constant."""
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 3, requires_grad=True)
    box = torch.zeros(1, 6, 4)
    cls_t = torch.tensor([[0, 2, -1, -1, -2, 1]])
    grads = {}
    for detach in (False, True):
        logits.grad = None
        focal, _ = retinanet_loss(logits, box, cls_t, box, detach_focal_weight=detach)
        focal.backward()
        grads[detach] = logits.grad.clone()
    onehot = (cls_t[..., None] == torch.arange(3)).float()
    p = torch.sigmoid(logits.detach())
    p_t = torch.where(onehot > 0, p, 1 - p)
    weight = torch.where(onehot > 0, 0.25, 0.75) * (1 - p_t) ** 2 * (cls_t != -2)[..., None] / 3  # 3 positives
    assert torch.allclose(grads[True], weight * (p - onehot), atol=1e-7)  # d bce / d logit = p - y
    assert not torch.allclose(grads[False], grads[True])


def test_coco_sls_port_starts_fpn_at_torch_defaults():
    torch.manual_seed(0)
    keras, port = shapes("keras").build_model(), shapes("sls").build_model()
    assert keras.lateral[0].bias.abs().sum().item() == 0.0  # Keras: zero bias
    assert port.lateral[0].bias.abs().sum().item() > 0.0  # torch: U(+-1/sqrt(fan_in))
    assert all(b.momentum == 0.1 for b in port.backbone.modules() if isinstance(b, nn.BatchNorm2d))


# ---- PTB -----------------------------------------------------------------------------------------------------

def test_ptb_sls_port_starts_as_torch_with_glorot_lstm_kernels():
    """BuildModel of sls_language_modeling.py: torch's start (embedding N(0, 1); LSTM biases U(+-1/sqrt(u)), no
    forget-gate 1; dense U(+-1/sqrt(u))) but xavier_uniform on the LSTM's two kernels. The Keras port: embedding
    U(+-0.05), zero biases with forget gate 1."""
    torch.manual_seed(0)
    port, keras = LSTMLanguageModel(1000, 32, 64, variant="sls"), LSTMLanguageModel(1000, 32, 64)
    assert port.embedding.weight.std().item() == pytest.approx(1.0, rel=0.05)
    assert keras.embedding.weight.abs().max().item() <= 0.05
    bias, forget = port.lstm.bias_ih_l0, slice(64, 128)
    assert 0 < bias.abs().max().item() <= 1 / 8 and bias[forget].mean().abs().item() < 0.05
    assert torch.all(keras.lstm.bias_ih_l0[forget] == 1.0)
    assert port.dense.bias.abs().max().item() > 0 and keras.dense.bias.abs().max().item() == 0
    limit_ih, limit_hh = math.sqrt(6 / (32 + 256)), math.sqrt(6 / (64 + 256))  # glorot over (4u, in) and (4u, u)
    assert port.lstm.weight_ih_l0.abs().max().item() <= limit_ih
    assert port.lstm.weight_ih_l0.abs().max().item() > 0.95 * limit_ih
    assert port.lstm.weight_hh_l0.abs().max().item() <= limit_hh
    assert sum(p.numel() for p in port.parameters()) == sum(p.numel() for p in keras.parameters())


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant must be one of keras, sls"):
        ResNet9(3, 8, variant="torch")
