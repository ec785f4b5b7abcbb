"""docs/experiments.md §7.2: the MSCOCO backbone is Keras' ImageNet ResNet50 (v1, convs with bias, Keras BN), its
HDF5 weights file converted into a torch module. Checked against tf.keras itself: a ResNet50 with random weights and
random BN statistics, saved as Keras saves the notop file, converted, gives the same C3/C4/C5 on a random image."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow")

from core.errors import CheckpointError  # noqa: E402
from core.pretrained import KERAS_RESNET50_NOTOP, read_keras_h5  # noqa: E402
from experiments.tasks.retinanet import KerasResNet50Features  # noqa: E402

SIZE = 64  # C3 8x8, C4 4x4, C5 2x2: small enough for two CPU cores


@pytest.fixture(scope="module")
def keras_resnet50(tmp_path_factory):
    """(Keras' ResNet50 without top, random weights and BN statistics; its weights as an HDF5 file)."""
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.applications.ResNet50(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c),
                               rng.uniform(0.5, 1.5, c)])
    path = tmp_path_factory.mktemp("keras") / KERAS_RESNET50_NOTOP
    model.save_weights(str(path))  # the legacy HDF5 layout of the keras.applications files
    return model, path


def keras_features(model, images: np.ndarray) -> list[np.ndarray]:
    """C3, C4, C5 as the authors' RetinaNet takes them: layers 80, 142 and the last (NHWC -> NCHW)."""
    assert model.layers[80].name == "conv3_block4_out" and model.layers[142].name == "conv4_block6_out"
    assert model.layers[-1].name == "conv5_block3_out"
    features = tf.keras.Model(model.inputs, [model.layers[80].output, model.layers[142].output,
                                             model.layers[-1].output])
    return [o.numpy().transpose(0, 3, 1, 2) for o in features(images, training=False)]


def assert_same(torch_out, keras_out) -> None:
    for ours, theirs in zip(torch_out, keras_out):
        theirs = torch.from_numpy(theirs)
        assert ours.shape == theirs.shape
        scale = theirs.abs().max().item()
        assert (ours - theirs).abs().max().item() <= 1e-4 * max(scale, 1.0), (ours - theirs).abs().max().item()


@pytest.mark.slow
def test_the_files_layers_are_keras_resnet50s_by_name(keras_resnet50):
    """The saved file holds, by name, exactly the 106 weighted layers the converter reads (53 convs, 53 BNs): the
    names of keras.applications' ResNet50, which its ImageNet notop file carries (Keras loads that file into this
    model; weight names like 'conv1_conv/kernel:0')."""
    model, path = keras_resnet50
    layers = read_keras_h5(str(path))
    expected = KerasResNet50Features(None).keras_layers()
    assert set(layers) == set(expected) and len(layers) == 106
    assert {layer.name for layer in model.layers if layer.weights} == set(layers)
    assert set(layers["conv1_conv"]) == {"kernel", "bias"}
    assert set(layers["conv5_block3_3_bn"]) == {"gamma", "beta", "moving_mean", "moving_variance"}
    assert layers["conv2_block1_0_conv"]["kernel"].shape == (1, 1, 64, 256)


@pytest.mark.slow
def test_converted_backbone_gives_keras_c3_c4_c5(keras_resnet50):
    model, path = keras_resnet50
    images = np.random.default_rng(1).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    backbone = KerasResNet50Features(str(path)).eval()
    with torch.no_grad():
        ours = backbone(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    assert [tuple(o.shape[1:]) for o in ours] == [(512, 8, 8), (1024, 4, 4), (2048, 2, 2)]
    assert_same(ours, keras_features(model, images))


@pytest.mark.slow
def test_caffe_preprocessing_is_keras_preprocess_input(keras_resnet50):
    """input_preprocessing="caffe": the pipeline's (x - 127.5) / 127.5 goes back to pixels and through Keras'
    preprocess_input (RGB -> BGR, minus the ImageNet means)."""
    model, path = keras_resnet50
    pixels = np.random.default_rng(2).uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)
    keras_in = tf.keras.applications.resnet50.preprocess_input(pixels.copy())
    backbone = KerasResNet50Features(str(path), input_preprocessing="caffe").eval()
    with torch.no_grad():
        ours = backbone(torch.from_numpy(((pixels - 127.5) / 127.5).transpose(0, 3, 1, 2).copy()))
    assert_same(ours, keras_features(model, keras_in))


def test_backbone_is_resnet_v1_with_biases_and_keras_bn():
    """Stride 2 in the first 1x1 conv of a downsampling block (v1; torchvision's v1.5 strides the 3x3), convs with
    bias, BN epsilon 1.001e-5 and Keras' momentum 0.99 (torch 0.01); Keras' parameter count (23,587,712)."""
    backbone = KerasResNet50Features(None)
    block = backbone.stacks[1][0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1) and block.conv0.stride == (2, 2)
    convs = [m for m in backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == len(bns) == 53 and all(c.bias is not None for c in convs)
    assert all(b.eps == 1.001e-5 and b.momentum == 0.01 for b in bns)
    trained = sum(p.numel() for p in backbone.parameters())
    stats = sum(b.running_mean.numel() + b.running_var.numel() for b in bns)
    assert trained + stats == 23_587_712  # tf.keras.applications.ResNet50(include_top=False).count_params()


def test_a_file_that_is_not_keras_resnet50_is_a_checkpoint_error(tmp_path):
    import h5py

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        group = f.create_group("dense")
        group.attrs["weight_names"] = [b"dense/kernel:0"]
        group["dense/kernel:0"] = np.zeros((2, 2), np.float32)
    with pytest.raises(CheckpointError, match="no layer conv1_conv"):
        KerasResNet50Features(str(path))
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(CheckpointError, match="not a Keras HDF5 weights file"):
        KerasResNet50Features(str(tmp_path / "bad.h5"))
