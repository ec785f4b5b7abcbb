"""core.keras_init: Keras conventions of the PyTorch ports (docs/experiments.md §2.3), on tiny modules and on one layer
per model. Every expected number is worked out by hand in the comments.

Bounds used below: Keras glorot_uniform draws U(+-sqrt(6 / (fan_in + fan_out))); torch's default Conv/Linear init,
kaiming_uniform(a=sqrt(5)), draws U(+-1 / sqrt(fan_in)) and a bias U(+-1 / sqrt(fan_in))."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from datagen.tasks import paper_models, segmentation, siamese, text, vision
from experiments.tasks.images import ResNet9
from experiments.tasks.language import LSTMLanguageModel
from experiments.tasks.retinanet import RetinaNet, SmallFeatures
from selection.proxy import WideResNet


def fans(weight: torch.Tensor) -> tuple[int, int]:
    return nn.init._calculate_fan_in_and_fan_out(weight)


def assert_glorot_zero_bias(layer: nn.Module):
    """Weights inside the glorot limit and reaching 90% of it (a few dozen uniform draws all stay below 0.9 x limit
    with probability 0.9^n), zero bias."""
    fan_in, fan_out = fans(layer.weight)
    limit = math.sqrt(6 / (fan_in + fan_out))
    top = layer.weight.abs().max().item()
    assert 0.9 * limit < top <= limit, (top, limit)
    assert layer.bias is None or layer.bias.abs().sum().item() == 0.0


def assert_keras_rnn(rnn: nn.RNNBase):
    """Keras LSTM/GRU: kernel glorot_uniform, recurrent kernel orthogonal over the whole (u, gates*u) matrix (torch
    stores (gates*u, u): orthonormal columns, W^T W = I_u), zero biases except the LSTM forget gate, 1 in total."""
    u = rnn.hidden_size
    w_ih, w_hh = rnn.weight_ih_l0, rnn.weight_hh_l0
    assert w_ih.abs().max().item() <= math.sqrt(6 / sum(fans(w_ih)))
    assert torch.allclose(w_hh.T @ w_hh, torch.eye(u), atol=1e-5)
    bias = rnn.bias_ih_l0 + rnn.bias_hh_l0
    forget = [0.0] * u + [1.0] * u + [0.0] * 2 * u if isinstance(rnn, nn.LSTM) else [0.0] * 3 * u
    assert bias.tolist() == forget
    assert rnn.bias_hh_l0.abs().sum().item() == 0.0


def keras_bns(model: nn.Module, eps: float = 1e-3):
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(bn.momentum == pytest.approx(0.01) and bn.eps == pytest.approx(eps) for bn in bns)
    return bns


# ---------------------------------------------------------------------------------------------------------------
# 1. the helper on tiny modules
# ---------------------------------------------------------------------------------------------------------------

def test_conv_linear_and_transposed_conv_get_glorot_and_zero_bias():
    from core.keras_init import keras_conventions_

    torch.manual_seed(0)
    conv, linear, up = nn.Conv2d(3, 4, 3), nn.Linear(5, 3), nn.ConvTranspose2d(4, 2, 2)
    keras_conventions_(nn.Sequential(conv, linear, up))
    # Conv2d(3, 4, 3): fan_in 3*9 = 27, fan_out 4*9 = 36, limit sqrt(6/63) = 0.3086067 (torch's: 1/sqrt(27) = 0.19245)
    assert fans(conv.weight) == (27, 36)
    assert 0.19245 < conv.weight.abs().max().item() <= 0.3086067
    # Linear(5, 3): limit sqrt(6/8) = 0.8660254 (torch's 1/sqrt(5) = 0.4472136)
    assert 0.4472136 < linear.weight.abs().max().item() <= 0.8660254
    # ConvTranspose2d(4, 2, 2), weight (4, 2, 2, 2): fans 2*4 = 8 and 4*4 = 16, limit sqrt(6/24) = 0.5 either way
    # round (torch's bound 1/sqrt(8) = 0.3535534)
    assert 0.3535534 < up.weight.abs().max().item() <= 0.5
    for m in (conv, linear, up):
        assert m.bias.abs().sum().item() == 0.0


def test_batch_norm_takes_keras_momentum_and_epsilon_unless_set_on_purpose():
    from core.keras_init import keras_conventions_

    default, resnet9_like, inception_like = nn.BatchNorm2d(4), nn.BatchNorm2d(4, 1e-3, 0.2), nn.BatchNorm1d(4, 1e-3)
    keras_conventions_(nn.Sequential(default, resnet9_like, inception_like))
    assert (default.momentum, default.eps) == (0.01, 1e-3)  # Keras momentum 0.99, epsilon 1e-3
    assert (resnet9_like.momentum, resnet9_like.eps) == (0.2, 1e-3)  # Keras momentum 0.8, set by the model
    assert (inception_like.momentum, inception_like.eps) == (0.01, 1e-3)
    kept, applications = nn.BatchNorm3d(2), nn.BatchNorm2d(2)
    keras_conventions_(kept, batch_norm=False)
    keras_conventions_(applications, bn_eps=1.001e-5)
    assert (kept.momentum, kept.eps) == (0.1, 1e-5)
    assert (applications.momentum, applications.eps) == (0.01, 1.001e-5)


def test_lstm_gru_and_embedding_start_as_keras():
    from core.keras_init import keras_conventions_

    torch.manual_seed(0)
    lstm, gru, embedding = nn.LSTM(3, 4), nn.GRU(3, 4), nn.Embedding(50, 8)
    keras_conventions_(nn.ModuleList([lstm, gru, embedding]))
    # LSTM(3, 4): kernel (16, 3) limit sqrt(6/19) = 0.5619515; forget bias sum 1 (bias_ih 1, bias_hh 0)
    assert lstm.weight_ih_l0.abs().max().item() <= 0.5619515
    assert (lstm.bias_ih_l0 + lstm.bias_hh_l0)[4:8].tolist() == [1.0] * 4
    assert_keras_rnn(lstm)
    assert_keras_rnn(gru)
    # Embedding U(-0.05, 0.05) over 400 draws (torch: N(0, 1))
    assert 0.045 < embedding.weight.abs().max().item() <= 0.05


def test_skipped_subtrees_are_left_alone_and_the_ptb_draws_are_unchanged():
    from core.keras_init import keras_conventions_

    keep, change = nn.Sequential(nn.Conv2d(2, 2, 3)), nn.Conv2d(2, 2, 3)
    before = [p.clone() for p in keep.parameters()]
    keras_conventions_(nn.Sequential(keep, change), skip=(keep,))
    assert all(torch.equal(a, b) for a, b in zip(before, keep.parameters()))
    assert change.bias.abs().sum().item() == 0.0

    def bare():  # LSTMLanguageModel's layers, built in its order
        return nn.ModuleList([nn.Embedding(10, 8), nn.LSTM(8, 16, batch_first=True), nn.Linear(16, 10)])

    torch.manual_seed(0)
    explicit = bare()  # the PTB model's former explicit init, draw by draw
    embedding, lstm, dense = explicit
    with torch.no_grad():
        nn.init.uniform_(embedding.weight, -0.05, 0.05)
        nn.init.xavier_uniform_(lstm.weight_ih_l0)
        nn.init.xavier_uniform_(lstm.weight_hh_l0)
        nn.init.zeros_(lstm.bias_hh_l0)
        nn.init.zeros_(lstm.bias_ih_l0)
        nn.init.ones_(lstm.bias_ih_l0[16:32])
        nn.init.xavier_uniform_(dense.weight)
        nn.init.zeros_(dense.bias)
    torch.manual_seed(0)
    helper = keras_conventions_(bare(), recurrent_initializer="glorot_uniform")
    torch.manual_seed(0)
    ptb = LSTMLanguageModel(vocab=10, embedding=8, units=16)
    for a, b, c in zip(explicit.parameters(), helper.parameters(), ptb.parameters()):
        assert torch.equal(a, b) and torch.equal(a, c)


# ---------------------------------------------------------------------------------------------------------------
# 2. one layer per model
# ---------------------------------------------------------------------------------------------------------------

# Table 1's tasks at mini size (source="standin", arch="small": two random samples), and the layer to look at
DATAGEN_LAYERS = [
    (vision.SvhnClassification, lambda m: m[0]),  # Conv2d(1, 8, 3): limit sqrt(6 / (9 + 72)) = 0.2721655
    (vision.SvhnEcc, lambda m: m[0][-1]),  # Linear(64, 16): limit sqrt(6/80) = 0.2738613
    (vision.SvhnAdversarial, lambda m: m[-1]),  # Linear(64, 10): limit sqrt(6/74) = 0.2847474
    (vision.Food101Classification, lambda m: m.head[-1]),  # Linear(32, 10): limit sqrt(6/42) = 0.3779645
    (vision.Food101Inception, lambda m: m.branches[2]),  # Conv2d(8, 8, 5): limit sqrt(6/400) = 0.1224745
    (segmentation.Cub200MultiTask, lambda m: m.segment[0]),  # ConvTranspose2d(16, 8, 2): sqrt(6/96) = 0.25
    (segmentation.MontgomeryUNet, lambda m: m.down[0][0]),  # Conv2d(1, 8, 3): 0.2721655
    (segmentation.Cub200UNet, lambda m: m.up[0]),  # ConvTranspose2d(32, 16, 2): limit sqrt(6/192) = 0.1767767
    (siamese.OmniglotSiamese, lambda m: m.encoder[6]),  # Linear(256, 32): limit sqrt(6/288) = 0.1443376
    (text.ImdbLSTM, lambda m: m.lstm),  # LSTM(8, 8)
    (text.MitMovieNER, lambda m: m.tag),  # Linear(8, 26) on BERT: limit sqrt(6/34) = 0.4200840
    (text.ShakespeareGRU, lambda m: m.gru),  # GRU(8, 32)
]


@pytest.mark.parametrize("task_class, layer", DATAGEN_LAYERS, ids=[t.__name__ for t, _ in DATAGEN_LAYERS])
def test_datagen_mini_models_start_as_keras(task_class, layer):
    """docs/experiments.md §2.3: the mini stand-ins take Keras' layer defaults; BatchNormalization momentum 0.99
    (torch 0.01), epsilon 1e-3, or 1.001e-5 where the stand-in is DenseNet121's."""
    torch.manual_seed(0)
    task = task_class(source="standin", arch="small", n_train=2, n_eval=2, batch_size=2, image_size=32)
    model = task.build_model()
    target = layer(model)
    if isinstance(target, nn.RNNBase):
        assert_keras_rnn(target)
    else:
        assert_glorot_zero_bias(target)
    if not isinstance(model, paper_models.BertTagger):  # BERT's own LayerNorms are transformers'
        keras_bns(model, eps=1.001e-5 if task_class is vision.Food101Classification else 1e-3)


def test_datagen_paper_models_start_as_keras_applications():
    """docs/experiments.md §2.3: DenseNet121 and InceptionV3 as keras.applications builds them from scratch
    (glorot, BatchNormalization momentum 0.99 with epsilon 1.001e-5 / 1e-3), the IMDB LSTM and the GRU as Keras."""
    torch.manual_seed(0)
    densenet = paper_models.densenet121(101)
    # conv0 Conv2d(3, 64, 7), no bias: limit sqrt(6 / (147 + 3136)) = 0.0427486 (torchvision: kaiming normal, std
    # sqrt(2/147) = 0.1166, far past it)
    assert_glorot_zero_bias(densenet.features.conv0)
    assert_glorot_zero_bias(densenet.classifier)  # Linear(1024, 101): limit sqrt(6/1125) = 0.0730297
    keras_bns(densenet, eps=1.001e-5)
    inception = paper_models.inception_v3(101)
    assert_glorot_zero_bias(inception.fc)  # Linear(2048, 101): limit sqrt(6/2149) = 0.0528396
    keras_bns(inception, eps=1e-3)
    imdb = paper_models.ImdbLSTM()
    assert_keras_rnn(imdb.lstm)
    assert 0.045 < imdb.embed.weight.abs().max().item() <= 0.05
    assert_keras_rnn(paper_models.CharGRU(65, embed=16, hidden=64).gru)


def test_bert_tagger_keeps_berts_init_and_its_head_is_a_keras_dense():
    """docs/experiments.md §2.3: the BERT encoder keeps its transformers init (pretrained weights in the paper), the
    tagger head alone starts as Keras' Dense."""
    torch.manual_seed(0)
    tagger = paper_models.BertTagger(5, config=dict(vocab_size=20, hidden_size=8, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=16))
    # transformers: word embeddings N(0, 0.02); Keras' U(-0.05, 0.05) would give a std of 0.0289
    assert tagger.bert.embeddings.word_embeddings.weight.std().item() == pytest.approx(0.02, rel=0.25)
    assert_glorot_zero_bias(tagger.tag)  # Linear(8, 5): limit sqrt(6/13) = 0.6793662


def test_proxy_wideresnet_starts_as_the_authors_keras_model():
    """docs/experiments.md §6: the authors' wideresnet_svhn.py sets no initializer: glorot_uniform, zero bias,
    BatchNormalization momentum 0.99 / epsilon 1e-3."""
    torch.manual_seed(0)
    model = WideResNet(depth=10, width=1)
    assert_glorot_zero_bias(model.features[0])  # Conv2d(3, 16, 3): limit sqrt(6 / (27 + 144)) = 0.1873171
    # Dense(10) on 64 channels: limit sqrt(6/74) = 0.2847474 (torch: 1/sqrt(64) = 0.125)
    assert 0.125 < model.head.weight.abs().max().item() <= 0.2847474
    assert_glorot_zero_bias(model.head)
    assert len(keras_bns(model)) == 7  # stem + 2 per block x 3 blocks


def test_resnet9_convs_and_head_are_glorot_and_its_bn_keeps_keras_momentum_08():
    """docs/experiments.md §7.1: Conv2D/Dense with Keras' defaults; BatchNormalization(momentum=0.8) = torch 0.2,
    epsilon 1e-3, as the authors set it."""
    torch.manual_seed(0)
    model = ResNet9(3, 16)
    assert_glorot_zero_bias(model.features[0][0])  # Conv2d(3, 16, 3): 0.1873171
    # head Linear(128, 10): limit sqrt(6/138) = 0.2085144 (torch: 1/sqrt(128) = 0.0883883)
    assert 0.0883883 < model.head.weight.abs().max().item() <= 0.2085144
    assert_glorot_zero_bias(model.head)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 8 and all((bn.momentum, bn.eps) == (0.2, 1e-3) for bn in bns)


def test_retinanet_fpn_is_keras_default_and_heads_keep_the_authors_init():
    """docs/experiments.md §7.2: the FPN convs set no initializer (glorot_uniform, zero bias); the heads N(0, 0.01),
    zero bias, class prior bias log(1/99); the mini backbone Keras' Conv2D + BatchNormalization."""
    torch.manual_seed(0)
    backbone = SmallFeatures(8)
    model = RetinaNet(backbone, backbone.channels, 3, width=16, levels=4)
    # lateral C3 Conv2d(32, 16, 1): limit sqrt(6/48) = 0.3535534 (torch: 1/sqrt(32) = 0.1767767)
    assert 0.1767767 < model.lateral[0].weight.abs().max().item() <= 0.3535534
    for conv in (*model.lateral, *model.smooth, *model.extra):
        assert_glorot_zero_bias(conv)
    head = model.cls_head[0]  # std 0.01 * sqrt(256 / 16) = 0.04 over 2304 draws
    assert head.weight.std().item() == pytest.approx(0.04, rel=0.1) and head.bias.abs().sum().item() == 0.0
    assert model.cls_head[-1].bias.tolist() == pytest.approx([math.log(1 / 99)] * 27)
    assert_glorot_zero_bias(backbone.stem[0][0])  # Conv2d(3, 8, 3): limit sqrt(6 / (27 + 72)) = 0.2461830
    keras_bns(backbone)


def test_pretrained_resnet50_backbone_keeps_its_init_and_takes_keras_resnet50_bn():
    """docs/experiments.md §2.3/§7.2: the backbone's weights stay as loaded (here torchvision's random init: no
    bias, kaiming normal), its BatchNorms update as Keras' ResNet50 (momentum 0.99, epsilon 1.001e-5)."""
    from experiments.tasks.retinanet import ResNet50Features

    torch.manual_seed(0)
    backbone = ResNet50Features(None)
    conv1 = backbone.stem[0]  # kaiming normal fan_out: std sqrt(2 / (64 * 49)) = 0.0252538
    assert conv1.bias is None and conv1.weight.std().item() == pytest.approx(0.0252538, rel=0.05)
    assert len(keras_bns(backbone, eps=1.001e-5)) == 53
