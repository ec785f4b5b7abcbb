"""Word-level language modelling (docs/experiments.md §7.3): Embedding -> LSTM -> Dropout(0.5) -> Dense logits, SGD
momentum 0.9, mean sparse CE, perplexity = exp(mean eval CE) (lower is better).

`PTBTask` (paper) reads Penn Treebank through FE's `penn_treebank.load_data(root_dir, seq_length=21)`:
non-overlapping 21-token chunks, x = chunk[:-1], y = chunk[1:], eval on the test split, batch 128
with drop_last (345 train steps). `StdlibTextTask` (mini/smoke) does the same on the English text of
Python's own help topics (`pydoc_data.topics`, ships with CPython), with a capped vocabulary.
"""
from __future__ import annotations

import collections
import math
import re

import numpy as np
import torch
from torch import nn

from core.keras_init import keras_conventions_
from experiments.tasks import check_variant
from core.tasks import Task, tensor_batches
from core.inputs import require, required


class LSTMLanguageModel(nn.Module):
    """Keras-equivalent init (core.keras_init): uniform(+-0.05) embedding; LSTM kernel (in, 4u) glorot_uniform (Keras
    default) and recurrent kernel (u, 4u) glorot_uniform (the repo sets it, docs/experiments.md §7.3), each over the
    whole 4-gate matrix as Keras draws it (fan_out = 4u), not per gate; one zero bias with forget-gate bias 1 (Keras
    unit_forget_bias); Glorot dense. PyTorch stores the transposes, (4u, in) and (4u, u): same fans, same limit."""

    def __init__(self, vocab: int, embedding: int = 300, units: int = 600, dropout: float = 0.5, variant: str = "keras"):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.lstm = nn.LSTM(embedding, units, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(units, vocab)
        if check_variant(variant) == "sls":
            # the authors' PyTorch port for SLS (`BuildModel` of meta_compare's sls_language_modeling.py,
            # docs/experiments.md §7.4): torch's default start (embedding N(0, 1), LSTM biases and the dense layer
            # U(+-1/sqrt(fan_in)), no forget-gate 1), except the two LSTM kernels, which it sets glorot_uniform.
            # Time-major there, batch-first here: the same computation.
            nn.init.xavier_uniform_(self.lstm.weight_ih_l0)
            nn.init.xavier_uniform_(self.lstm.weight_hh_l0)
        else:
            keras_conventions_(self, recurrent_initializer="glorot_uniform")  # limits sqrt(6 / (in + 4u)), (u + 4u)

    def forward(self, x):  # stateless: a fresh zero state every batch, as the repo's Keras model
        return self.dense(self.dropout(self.lstm(self.embedding(x))[0]))


class LanguageModelTask(Task):
    loss_name, metric_name, metric_mode = "ce", "perplexity", "min"

    def __init__(self, train_chunks: np.ndarray, eval_chunks: np.ndarray, vocab_size: int, batch_size: int,
                 embedding: int, units: int, variant: str = "keras", device: str = "cpu"):
        super().__init__(device)
        self.variant = check_variant(variant)  # keras | sls (LSTMLanguageModel)
        self.train_chunks = torch.tensor(train_chunks, dtype=torch.long)
        self.eval_chunks = torch.tensor(eval_chunks, dtype=torch.long)
        self.vocab_size, self.batch_size, self.embedding, self.units = vocab_size, batch_size, embedding, units
        self.steps_per_epoch = len(self.train_chunks) // batch_size
        if self.steps_per_epoch < 1 or len(self.eval_chunks) < batch_size:
            raise ValueError(f"{type(self).__name__}: fewer chunks than one batch of {batch_size}")

    def train_batches(self, generator):
        for (chunk,) in tensor_batches((self.train_chunks,), self.batch_size, generator, drop_last=True):
            yield chunk.to(self.device)

    def build_model(self):
        return LSTMLanguageModel(self.vocab_size, self.embedding, self.units, variant=self.variant)

    def train_loss(self, model, chunk):
        logits = model(chunk[:, :-1])
        return nn.functional.cross_entropy(logits.reshape(-1, self.vocab_size), chunk[:, 1:].reshape(-1))

    @torch.no_grad()
    def evaluate(self, model):
        """Mean of per-batch mean CE (FE's eval epoch mean, drop_last as in training); perplexity = exp."""
        losses = [self.train_loss(model, chunk.to(self.device)).item()
                  for (chunk,) in tensor_batches((self.eval_chunks,), self.batch_size, None, drop_last=True)]
        ce = float(np.mean(losses))
        return ce, math.exp(ce) if ce < 700 else math.inf


def chunk(tokens: list[int], length: int = 21) -> np.ndarray:
    """FE penn_treebank semantics: drop the tail that does not fill a chunk, reshape to (-1, length)."""
    usable = len(tokens) - len(tokens) % length
    return np.array(tokens[:usable], dtype=np.int64).reshape(-1, length)


def stdlib_corpus(vocab_size: int) -> tuple[list[int], list[int], int]:
    """Token ids of Python's help topics: lower-cased words and punctuation, `<eos>` after each line,
    every 10th topic (sorted by name) held out as the test split, rarer words mapped to `<unk>`."""
    from pydoc_data.topics import topics

    def tokens(names):
        out = []
        for name in names:
            for line in topics[name].lower().splitlines():
                words = re.findall(r"[a-z]+|[.,;:()]", line)
                if words:
                    out += words + ["<eos>"]
        return out

    names = sorted(topics)
    train, test = tokens([n for i, n in enumerate(names) if i % 10]), tokens(names[::10])
    common = [w for w, _ in collections.Counter(train).most_common(vocab_size - 1)]
    index = {w: i for i, w in enumerate(sorted(common) + ["<unk>"])}
    unk = index["<unk>"]
    return [index.get(w, unk) for w in train], [index.get(w, unk) for w in test], len(index)


class StdlibTextTask(LanguageModelTask):
    """mini/smoke stand-in for PTB (offline): same model family, scaled, on pydoc_data's English text."""

    name = "ptb"

    def __init__(self, vocab_size: int = 1000, embedding: int = 32, units: int = 64, batch_size: int = 128,
                 max_train_chunks: int | None = None, variant: str = "keras", device: str = "cpu"):
        train, test, vocab = stdlib_corpus(vocab_size)
        train_chunks, eval_chunks = chunk(train), chunk(test)
        train_chunks = train_chunks[:max_train_chunks]
        super().__init__(train_chunks, eval_chunks, vocab, batch_size, embedding, units, variant, device)


class PTBTask(LanguageModelTask):
    """paper: PTB, vocab 10,000, Embedding 300, LSTM 600, batch 128, eval on the test split."""

    name = "ptb"

    def __init__(self, root_dir: str, embedding: int = 300, units: int = 600, batch_size: int = 128,
                 variant: str = "keras", device: str = "cpu"):
        require(self.paper_inputs(root_dir), "ptb")
        from fastestimator.dataset.data import penn_treebank

        train, _, test, vocab = penn_treebank.load_data(root_dir=root_dir, seq_length=21)
        super().__init__(np.asarray(train["x"]), np.asarray(test["x"]), len(vocab), batch_size, embedding, units,
                         variant, device)

    @staticmethod
    def paper_inputs(root_dir: str, **_):
        """The files FE's penn_treebank loader reads (core.inputs.REGISTRY; `make check-data` lists the same)."""
        return required("ptb", root_dir)
