"""The Table-1 architectures (docs/experiments.md §2.2) at the paper's sizes, for the `paper` profile.

Torchvision supplies VGG/DenseNet/Inception/ResNet (randomly initialised: the paper trained them from scratch
[I], except task 6's ResNet50, ImageNet-initialised as in FastEstimator's apphub); the rest follow the
FastEstimator apphub models the authors' tasks came from [I]: the IMDB LSTM (Embedding 100, Conv1D 32, MaxPool 4,
LSTM 64, Dense 250), FE's siamese net (Koch) for 105x105 Omniglot, the Shakespeare GRU (Embedding 256, GRU 1024),
task 6's ResUnet50; tasks 11-12 use FastEstimator's own UNet (`fe_unet`).

Initialisation (docs/experiments.md §2.3): the authors wrote their models in TF/Keras, so a model built here from
scratch starts as its Keras twin would (core.keras_init: glorot_uniform, zero bias, Keras BatchNormalization)
[I: the datagen code is not public] -- VGG (Keras layers), DenseNet121 and InceptionV3 (keras.applications,
weights=None), the IMDB LSTM, the GRU, the BERT tagger's head and the mini stand-ins (UNet, Siamese). Left as they
are: pretrained weights (task 6's ResNet50, BERT), and the models whose FastEstimator source sets its own init
(KochSiamese, ResUNet50's decoder, fe_unet).
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn

from core.keras_init import APPLICATIONS_BN_EPS, keras_conventions_
from core.pretrained import resnet50


def vgg_cifar(depth: int, batch_norm: bool, outputs: int) -> nn.Module:
    """torchvision VGG on 32x32 inputs: the 1x1x512 feature map flattened into the 4096-4096 head."""
    name = f"vgg{depth}_bn" if batch_norm else f"vgg{depth}"
    model = getattr(torchvision.models, name)(weights=None, num_classes=outputs)
    model.avgpool = nn.Flatten()
    model.classifier[0] = nn.Linear(512, 4096)
    return keras_conventions_(model)  # keras.applications VGG16/19: Keras defaults; VGG19 + BN: Keras' BN defaults


def densenet121(classes: int) -> nn.Module:
    """keras.applications.DenseNet121's start: glorot convs and Dense, BatchNormalization(epsilon=1.001e-5)."""
    return keras_conventions_(torchvision.models.densenet121(weights=None, num_classes=classes),
                              bn_eps=APPLICATIONS_BN_EPS)


def inception_v3(classes: int) -> nn.Module:
    """keras.applications.InceptionV3's start: glorot convs (no bias) and Dense; BN epsilon 1e-3 (torchvision sets
    it too), momentum 0.99. torchvision's own init is skipped: keras_conventions_ draws every weight again."""
    return keras_conventions_(torchvision.models.inception_v3(weights=None, num_classes=classes, aux_logits=False,
                                                              init_weights=False))


def conv_block(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


def fe_unet(channels: int, size: int) -> nn.Module:
    """FastEstimator's UNet (architecture.pytorch.UNet: 64..1024 channels, he_normal, nearest upsampling + conv),
    the model of FE apphub's Montgomery example (tasks 11, 12), returning logits: its final sigmoid is left to the
    loss (BCE with logits, soft dice of sigmoid). `size` must be a multiple of 16."""
    from fastestimator.architecture.pytorch import UNet as FEUNet

    net = FEUNet(input_size=(channels, size, size), output_channel=1)
    assert isinstance(net.dec1[-1], nn.Sigmoid)
    net.dec1[-1] = nn.Identity()
    return net


class UNet(nn.Module):
    """Ronneberger UNet with `widths` per level; returns per-pixel logits (mini's small UNets, `small_unet`)."""

    def __init__(self, in_channels: int, out_channels: int, widths=(64, 128, 256, 512, 1024)):
        super().__init__()
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(conv_block(cin, w))
            cin = w
        self.up = nn.ModuleList(nn.ConvTranspose2d(w, w // 2, 2, stride=2) for w in widths[:0:-1])
        self.merge = nn.ModuleList(conv_block(w, w // 2) for w in widths[:0:-1])
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        keras_conventions_(self)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], 1))
        return self.head(x)


def upsample_conv(cin: int, cout: int) -> nn.Module:
    """x2 bilinear upsampling (align_corners), then 3x3 conv + ReLU (FE apphub's Upsample2D)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                         nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True))


class UpMerge(nn.Module):
    """Decoder block: upsample_conv the deeper map, concatenate the skip, two 3x3 conv + ReLU (FE's DecBlock)."""

    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.up = upsample_conv(cin, cout)
        self.merge = nn.Sequential(nn.Conv2d(cout + skip, cout, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x, skip):
        return self.merge(torch.cat([self.up(x), skip], 1))


class ResUNet50(nn.Module):
    """Task 6, after FastEstimator's apphub `ResUnet50` (multi_task_learning/uncertainty_weighted_loss): a ResNet50
    encoder (ImageNet weights from `weights_path`; None: random) whose last stage gives the class through a global max
    pool and a linear layer, and a decoder that climbs back through the encoder's 5 stages to a 1-channel mask.

    Returns class logits and mask logits (FE applies softmax / sigmoid and its CrossEntropy takes probabilities; the
    losses on logits are the same functions). `log_var` are Kendall et al.'s task log-variances (FE's
    UncertaintyLossNet w1, w2, zeros at the start), trained by their own Adam(1e-5) (`fixed_lr_parameters`)."""

    def __init__(self, classes: int = 200, weights_path: str | None = None):
        super().__init__()
        net = resnet50(weights_path)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)  # 64 channels, 1/2
        self.stages = nn.ModuleList([nn.Sequential(net.maxpool, net.layer1), net.layer2, net.layer3, net.layer4])
        self.fc = nn.Linear(2048, classes)
        self.decode = nn.ModuleList([UpMerge(2048, 1024, 512), UpMerge(512, 512, 256), UpMerge(256, 256, 128),
                                     UpMerge(128, 64, 64)])
        self.to_full = upsample_conv(64, 2)
        self.mask = nn.Conv2d(2, 1, 1)
        for module in [*self.decode.modules(), *self.to_full.modules()]:  # FE: he_normal on the decoder's convs
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
        self.log_var = nn.Parameter(torch.zeros(2))

    def fixed_lr_parameters(self):
        return [("adam", 1e-5, [self.log_var])]

    def forward(self, x):
        skips = [self.stem(x)]
        for stage in self.stages:
            skips.append(stage(skips[-1]))
        y = skips[-1]
        logits = self.fc(torch.amax(y, dim=(2, 3)))
        for block, skip in zip(self.decode, reversed(skips[:-1])):
            y = block(y, skip)
        return logits, self.mask(self.to_full(y))


class ImdbLSTM(nn.Module):
    def __init__(self, vocab: int = 10000, embed: int = 100, conv: int = 32, hidden: int = 64, dense: int = 250):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.conv = nn.Conv1d(embed, conv, 3, padding=1)
        self.lstm = nn.LSTM(conv, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, dense), nn.ReLU(), nn.Linear(dense, 1))
        keras_conventions_(self)  # FE apphub imdb_tf.py: Keras layers with their defaults

    def forward(self, x):
        h = torch.relu(self.conv(self.embed(x).transpose(1, 2)))
        h = nn.functional.max_pool1d(h, 4) if h.shape[-1] >= 4 else h
        _, (last, _) = self.lstm(h.transpose(1, 2))
        return self.head(last[-1]).squeeze(-1)  # logit of "positive"


class BertTagger(nn.Module):
    """BERT encoder + per-token linear tagger (task 8). `pretrained` is the local directory of a Hugging Face
    checkpoint (paper: bert-base-uncased, see MitMovieNER.bert_dir), read offline; None builds the same shapes
    randomly. BERT keeps its weights (or transformers' init, BERT's own truncated normal 0.02); the tagger head starts
    as the Keras Dense of FE apphub's bert_tf.py (glorot_uniform, zero bias)."""

    def __init__(self, tags: int, pretrained: str | None = None, config: dict | None = None):
        super().__init__()
        from transformers import BertConfig, BertModel
        self.bert = (BertModel.from_pretrained(pretrained, local_files_only=True) if pretrained
                     else BertModel(BertConfig(**(config or {}))))
        self.tag = keras_conventions_(nn.Linear(self.bert.config.hidden_size, tags))

    def forward(self, x):
        return self.tag(self.bert(input_ids=x, attention_mask=(x != 0).long()).last_hidden_state)


class Siamese(nn.Module):
    """Koch et al. siamese net: shared encoder, L1 distance of embeddings, one logit 'same class'."""

    def __init__(self, encoder: nn.Module, embedding: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(embedding, 1)
        keras_conventions_(self)

    def forward(self, a, b):
        return self.head(torch.abs(self.encoder(a) - self.encoder(b))).squeeze(-1)


class KochSiamese(nn.Module):
    """Task 9, FastEstimator apphub's SiameseNetwork (one_shot_learning/siamese_network, after Koch et al.): per image
    conv 64@10 -> 128@7 -> 128@4 (each max-pooled) -> 256@4, flattened into a 4096-unit sigmoid layer; the L1
    distance of the two embeddings -> one logit "same class" (FE applies the sigmoid; the loss takes logits here).
    Init as FE's: conv weights N(0, 0.01), linear weights N(0, 0.2), every bias N(0.5, 0.01)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 64, 10), nn.Conv2d(64, 128, 7)
        self.conv3, self.conv4 = nn.Conv2d(128, 128, 4), nn.Conv2d(128, 256, 4)
        self.fc1, self.fc2 = nn.Linear(256 * 6 * 6, 4096), nn.Linear(4096, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.01 if isinstance(m, nn.Conv2d) else 0.2)
                nn.init.normal_(m.bias, 0.5, 0.01)

    def embed(self, x):
        for conv in (self.conv1, self.conv2, self.conv3):
            x = torch.relu(nn.functional.max_pool2d(conv(x), 2))
        return torch.sigmoid(self.fc1(torch.relu(self.conv4(x)).flatten(1)))

    def forward(self, a, b):
        return self.fc2(torch.abs(self.embed(a) - self.embed(b))).squeeze(-1)

    def train_penalty(self) -> torch.Tensor:
        """FE's L2Regularization op, added to the training loss only: 0.01 sum w^2 over the conv weights and
        1e-4 sum w^2 over fc1's."""
        convs = sum((m.weight ** 2).sum() for m in (self.conv1, self.conv2, self.conv3, self.conv4))
        return 0.01 * convs + 1e-4 * (self.fc1.weight ** 2).sum()


class CharGRU(nn.Module):
    def __init__(self, vocab: int, embed: int = 256, hidden: int = 1024):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.gru = nn.GRU(embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)
        keras_conventions_(self)  # Keras GRU (reset_after, two zero biases as torch's) and Dense defaults

    def forward(self, x):
        return self.out(self.gru(self.embed(x))[0])
