"""Tasks 1-5 of Table 1: image classification with sparse CE (1, 4, 5), ECC hinge (2), adversarial (3).

Offline stand-ins: scikit-learn's 8x8 digits for SVHN (tasks 1-3), generated textures for Food-101 (4-5).
Paper data: FastEstimator's svhn_cropped (32x32x3) and food101 (resized to 224 for DenseNet121, 299 for
InceptionV3, the torchvision input sizes [I]). Pixels are scaled to [0, 1].
Every model here, mini stand-in or paper size, starts as its Keras twin would (core.keras_init, docs/experiments.md
§2.3) [I: the authors' datagen code is not public; their public model code is all TF/Keras].
"""
from __future__ import annotations

import cv2
import numpy as np
import scipy.linalg
import torch
from torch import nn

from core.keras_init import APPLICATIONS_BN_EPS, keras_conventions_
from datagen.tasks import offline_data, paper_models
from datagen.tasks.base import DatagenTask, MappedDataset, accuracy


def svhn_tensors(root_dir):
    from fastestimator.dataset.data import svhn_cropped
    train, test = svhn_cropped.load_data(root_dir=root_dir)

    def tensors(ds):
        x = torch.tensor(ds["x"]).permute(0, 3, 1, 2).float() / 255.0
        return x, torch.tensor(ds["y"]).long().reshape(-1)
    return tensors(train), tensors(test)


def small_cnn(in_channels: int, width: int, outputs: int, batch_norm: bool = False) -> nn.Module:
    """VGG-style 2-stage conv net for 8x8-16x16 inputs (mini stand-in for the VGG family)."""
    norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
    return keras_conventions_(nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), norm(width), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), norm(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), norm(2 * width), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(8 * width, outputs)))


class SvhnClassification(DatagenTask):
    """Task 1: VGG19 + BatchNorm, sparse CE."""
    name, number, loss_name = "svhn_vgg19bn", 1, "ce"
    dataset = "svhn_cropped"
    classes = 10

    def offline_data(self, n_train, n_eval, seed):
        return offline_data.digits(n_train, n_eval, seed)

    def fe_data(self, root_dir):
        return svhn_tensors(root_dir)

    def standin(self, n, generator):
        return torch.rand(n, 3, 32, 32, generator=generator), torch.randint(0, 10, (n,), generator=generator)

    def small_model(self):
        return small_cnn(1, self.width, self.classes, batch_norm=True)

    def paper_model(self):
        return paper_models.vgg_cifar(19, True, self.classes)

    def step(self, model, batch):
        x, y = batch
        logits = model(x)
        return nn.functional.cross_entropy(logits, y), accuracy(logits, y)


def fe_hadamard_codes(classes: int, code_length: int):
    """FastEstimator 1.7's Hadamard op (op/numpyop/univariate/hadamard.py), as FE's ECC example trains with it: the
    first `classes` rows of the Sylvester Hadamard matrix of order `code_length`, with column 0 of the even rows
    set to -1 (so that column alternates instead of being constant)."""
    labels = scipy.linalg.hadamard(code_length).astype("float32")
    labels[0::2, 0] = -1
    return labels[:classes]


class SvhnEcc(SvhnClassification):
    """Task 2: VGG16 + error-correcting output codes: tanh code outputs, hinge loss against Hadamard
    codewords (FastEstimator's Hadamard/Hinge ops [FE]); prediction = nearest codeword."""
    name, number, loss_name = "svhn_vgg16_ecc", 2, "hinge"
    code_length = 16

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.codes = torch.tensor(fe_hadamard_codes(self.classes, self.code_length), dtype=torch.float32)

    def small_model(self):
        return nn.Sequential(small_cnn(1, self.width, self.code_length), nn.Tanh())

    def paper_model(self):
        return nn.Sequential(paper_models.vgg_cifar(16, False, self.code_length), nn.Tanh())

    def step(self, model, batch):
        x, y = batch
        codes = self.codes.to(x.device)
        out = model(x)
        loss = torch.relu(1 - codes[y] * out).mean()
        return loss, accuracy(out @ codes.T, y)


class SvhnAdversarial(SvhnClassification):
    """Task 3: VGG19 with FGSM adversarial training, loss = mean of clean and adversarial CE (FastEstimator
    apphub fgsm, epsilon 0.04 [I]). The eval loss is the same mixed loss, so eval needs input gradients."""
    name, number, loss_name = "svhn_vgg19_adversarial", 3, "adversarial_ce"
    eval_needs_grad = True
    epsilon = 0.04

    def small_model(self):
        return small_cnn(1, self.width, self.classes)

    def paper_model(self):
        return paper_models.vgg_cifar(19, False, self.classes)

    def step(self, model, batch):
        x, y = batch
        x = x.clone().requires_grad_(True)
        logits = model(x)
        clean = nn.functional.cross_entropy(logits, y)
        (grad,) = torch.autograd.grad(clean, x, retain_graph=model.training)
        x_adv = (x + self.epsilon * grad.sign()).clamp(0, 1).detach()
        adversarial = nn.functional.cross_entropy(model(x_adv), y)
        loss = (clean + adversarial) / 2
        return (loss if model.training else loss.detach()), accuracy(logits.detach(), y)


class Food101Classification(DatagenTask):
    """Task 4: DenseNet121, sparse CE over 101 classes (offline: 10-class generated textures)."""
    name, number, loss_name = "food101_densenet121", 4, "ce"
    dataset = "food101"
    image_size, offline_size, offline_classes = 224, 16, 10

    def offline_data(self, n_train, n_eval, seed):
        n_eval = n_eval or 200
        x, y = offline_data.textures((n_train or 800) + n_eval, self.offline_size, self.offline_classes,
                                     seed + self.number)
        return offline_data.split((x, y), n_train, n_eval)

    def fe_data(self, root_dir):
        from fastestimator.dataset.data import food101
        train, test = food101.load_data(root_dir=root_dir)
        return (MappedDataset(train, self.decoder(train.parent_path)),
                MappedDataset(test, self.decoder(test.parent_path)))

    def decoder(self, parent):
        def decode(item):
            image = cv2.cvtColor(cv2.imread(f"{parent}/{item['image']}"), cv2.COLOR_BGR2RGB)
            image = cv2.resize(image, (self.image_size, self.image_size))
            return torch.tensor(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0, int(item["label"])
        return decode

    def standin(self, n, generator):
        size = self.image_size
        return torch.rand(n, 3, size, size, generator=generator), torch.randint(0, 101, (n,), generator=generator)

    def small_model(self):
        return TinyDenseNet(self.width, self.offline_classes)

    def paper_model(self):
        return paper_models.densenet121(101)

    def step(self, model, batch):
        x, y = batch
        logits = model(x)
        return nn.functional.cross_entropy(logits, y), accuracy(logits, y)


class Food101Inception(Food101Classification):
    """Task 5: InceptionV3 (299x299), sparse CE."""
    name, number = "food101_inceptionv3", 5
    image_size = 299

    def small_model(self):
        return TinyInception(self.width, self.offline_classes)

    def paper_model(self):
        return paper_models.inception_v3(101)


class TinyDenseNet(nn.Module):
    """One dense block (each layer sees all previous feature maps), the DenseNet idea at mini size."""

    def __init__(self, width: int, classes: int, layers: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.layers = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(width * (i + 1)), nn.ReLU(),
                                                  nn.Conv2d(width * (i + 1), width, 3, padding=1))
                                    for i in range(layers))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width * (layers + 1), classes))
        keras_conventions_(self, bn_eps=APPLICATIONS_BN_EPS)  # as the DenseNet121 it stands in for

    def forward(self, x):
        features = [self.stem(nn.functional.max_pool2d(x, 2))]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return self.head(torch.cat(features, 1))


class TinyInception(nn.Module):
    """One inception module (parallel 1x1, 3x3, 5x5 and pooled branches), the InceptionV3 idea at mini size."""

    def __init__(self, width: int, classes: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.branches = nn.ModuleList([nn.Conv2d(width, width, 1), nn.Conv2d(width, width, 3, padding=1),
                                       nn.Conv2d(width, width, 5, padding=2),
                                       nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(width, width, 1))])
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, classes))
        keras_conventions_(self)

    def forward(self, x):
        x = self.stem(x)
        return self.head(torch.cat([b(x) for b in self.branches], 1))
