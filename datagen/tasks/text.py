"""Tasks 7, 8, 10 of Table 1: text classification (IMDB LSTM, binary CE), named-entity recognition (MIT Movie,
BERT, per-token sparse CE) and character-level generation (Shakespeare GRU, sparse CE on the next character).

Offline stand-ins: generated cue-word reviews (7), generated BIO-tagged movie queries (8), Python's stdlib
docstrings as the character stream (10). Paper data: FastEstimator's imdb_review (max_len 500, vocab 10000;
FE reads Keras' imdb.npz from Keras' cache and would download it there, so this task hands Keras the file
${paths.data}/IMDB/imdb.npz, checked with its sha256 first), mitmovie_ner (through FE apphub's BERT NER pipeline,
bert-base-uncased read offline from a local directory, never from the Hugging Face cache) and shakespeare
(windows of 100+1 characters, last 10% held out).
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from core.inputs import offline_hub, required, verify
from datagen.tasks import offline_data, paper_models
from datagen.tasks.base import DatagenTask


class ImdbLSTM(DatagenTask):
    """Task 7: LSTM sentiment classifier, binary CE; metric accuracy."""
    name, number, loss_name = "imdb_lstm", 7, "bce"
    dataset = "imdb"
    max_len, vocab, offline_len, offline_vocab = 500, 10000, 40, 200

    def offline_data(self, n_train, n_eval, seed):
        n_eval = n_eval or 200
        data = offline_data.sentiment((n_train or 800) + n_eval, self.offline_len, self.offline_vocab, seed + 7)
        return offline_data.split(data, n_train, n_eval)

    def fe_data(self, root_dir):
        """FE's imdb_review.load_data, with Keras reading our checked copy instead of its cache: Keras'
        get_file takes an absolute `path` as the file itself and downloads only when it is missing or its sha256
        differs, which `verify` rules out first."""
        (path,) = [verify(item) for item in required(self.dataset, root_dir)]  # before Keras is imported
        import tensorflow as tf
        from fastestimator.dataset.data.imdb_review import pad
        (x_train, y_train), (x_eval, y_eval) = tf.keras.datasets.imdb.load_data(
            path=str(path), maxlen=self.max_len, num_words=self.vocab)
        return tuple((torch.tensor(np.array([pad(x, self.max_len, 0) for x in xs])).long(), torch.tensor(ys).float())
                     for xs, ys in ((x_train, y_train), (x_eval, y_eval)))

    def standin(self, n, generator):
        return (torch.randint(0, self.vocab, (n, self.max_len), generator=generator),
                torch.randint(0, 2, (n,), generator=generator).float())

    def small_model(self):
        return paper_models.ImdbLSTM(self.offline_vocab, embed=self.width, conv=self.width, hidden=self.width,
                                     dense=2 * self.width)

    def paper_model(self):
        return paper_models.ImdbLSTM(self.vocab)

    def step(self, model, batch):
        x, y = batch
        logit = model(x)
        return nn.functional.binary_cross_entropy_with_logits(logit, y), ((logit > 0).float() == y).float().mean().item()


class MitMovieNER(DatagenTask):
    """Task 8: BERT token tagger, per-token sparse CE; metric token accuracy over the positions the loss counts.
    Paper: FE apphub's BERT NER on this dataset (NLP/named_entity_recognition/bert_tf.py, the authors' library; the
    datagen code is not public [I]): the sentence (FE joins its words with " ") is WordPiece-tokenized by
    `tokenizer.tokenize` (FE's Tokenize), mapped to ids, and padded or cut to max_len 20 (FE's PadSequence); its tags
    are mapped and padded separately with an extra class len(tags), which the loss counts like any tag. A word that
    WordPiece splits therefore shifts the tags after it: FE's pipeline does not re-align them, nor does this one.
    Batch 64 there (configs/datagen_task/mitmovie_bert_ner.yaml). Offline stand-in: generated queries of whole-word
    ids, tag 0 = pad, ignored by the loss."""
    name, number, loss_name = "mitmovie_bert_ner", 8, "ce"
    dataset = "mitmovie"
    max_len, offline_len, paper_tags = 20, 16, 26  # FE apphub max_len; 25 tags of engtrain.bio + FE's pad class

    def __init__(self, pretrained: str | None = "bert-base-uncased", weights_dir: str | None = None, **kwargs):
        self.pretrained, self.weights_dir = pretrained, weights_dir
        self.vocab_size, self.tags = 30522, self.paper_tags  # bert-base-uncased
        self.ignored_tag = -100  # a tag value the loss skips: none in FE's pipeline (torch's default ignore_index)
        super().__init__(**kwargs)

    @staticmethod
    def bert_dir(root_dir: str | None, pretrained: str, weights_dir: str | None = None) -> str:
        """The local directory of the BERT checkpoint: `pretrained` itself when it is an absolute path, else
        <weights_dir>/<pretrained> (weights_dir: ${paths.weights}), else <root_dir>/<pretrained>."""
        if os.path.isabs(pretrained):
            return pretrained
        return os.path.join(os.path.abspath(weights_dir or root_dir), pretrained)

    @classmethod
    def paper_inputs(cls, root_dir=None, source="fe", pretrained="bert-base-uncased", weights_dir=None, **_):
        inputs = super().paper_inputs(root_dir, source)
        if source == "fe" and root_dir is not None and pretrained:
            folder = cls.bert_dir(root_dir, pretrained, weights_dir)
            inputs += required("bert_tokenizer", folder, exact=True) + required("bert_weights", folder, exact=True)
        return inputs

    def input_options(self):
        return {"pretrained": self.pretrained, "weights_dir": self.weights_dir}

    def offline_data(self, n_train, n_eval, seed):
        n_eval = n_eval or 200
        x, y, self.vocab_size, self.tags = offline_data.movie_queries((n_train or 800) + n_eval, self.offline_len,
                                                                      seed + 8)
        self.ignored_tag = 0  # the stand-in's pad
        return offline_data.split((x, y), n_train, n_eval)

    def fe_data(self, root_dir):
        offline_hub()  # a local directory, and Hugging Face kept offline: its cache is never read nor filled
        from fastestimator.dataset.data import mitmovie_ner
        from fastestimator.op.numpyop import forward_numpyop
        from fastestimator.op.numpyop.univariate import PadSequence, Tokenize, WordtoId
        from transformers import BertTokenizer
        train, test, _, label_vocab = mitmovie_ner.load_data(root_dir=root_dir)
        tokenizer = BertTokenizer.from_pretrained(self.bert_dir(root_dir, self.pretrained, self.weights_dir),
                                                  local_files_only=True, do_lower_case=True)
        tag_id = {t: i for i, t in enumerate(sorted(label_vocab))}  # FE enumerates the set; any order will do
        self.tags = len(tag_id) + 1  # + FE's pad class
        ops = [Tokenize(inputs="x", outputs="x", tokenize_fn=tokenizer.tokenize),
               WordtoId(inputs="x", outputs="x", mapping=tokenizer.convert_tokens_to_ids),
               WordtoId(inputs="y", outputs="y", mapping=tag_id),
               PadSequence(max_len=self.max_len, inputs="x", outputs="x"),
               PadSequence(max_len=self.max_len, value=len(tag_id), inputs="y", outputs="y")]

        def tensors(ds):
            x, y = np.zeros((len(ds), self.max_len), np.int64), np.zeros((len(ds), self.max_len), np.int64)
            for i, (sentence, tags) in enumerate(zip(ds["x"], ds["y"])):
                sample = {"x": str(sentence), "y": list(tags)}
                forward_numpyop(ops, sample, {"mode": "train"})
                x[i], y[i] = sample["x"], sample["y"]
            return torch.tensor(x), torch.tensor(y)
        return tensors(train), tensors(test)

    def standin(self, n, generator):
        return (torch.randint(1, self.vocab_size, (n, self.max_len), generator=generator),
                torch.randint(1, self.tags, (n, self.max_len), generator=generator))

    def small_model(self):
        config = dict(vocab_size=self.vocab_size, hidden_size=self.width, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=2 * self.width, max_position_embeddings=self.offline_len)
        return paper_models.BertTagger(self.tags, config=config)

    def paper_model(self):
        local = self.bert_dir(self.root_dir, self.pretrained, self.weights_dir) if self.source == "fe" else None
        return paper_models.BertTagger(self.tags, pretrained=local)

    def step(self, model, batch):
        x, y = batch
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=self.ignored_tag)
        counted = y != self.ignored_tag
        return loss, (logits.argmax(-1)[counted] == y[counted]).float().mean().item()


class ShakespeareGRU(DatagenTask):
    """Task 10: character-level GRU language model, sparse CE on the next character; metric accuracy."""
    name, number, loss_name = "shakespeare_gru", 10, "ce"
    dataset = "shakespeare"
    seq_len, paper_vocab, offline_seq_len = 100, 65, 32

    def offline_data(self, n_train, n_eval, seed):
        n_eval = n_eval or 64
        windows_needed = (n_train or 512) + n_eval
        text = offline_data.python_docstrings(windows_needed * (self.offline_seq_len + 1))
        windows, vocab = offline_data.char_windows(text, self.offline_seq_len)
        self.vocab_size = len(vocab)
        order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed))
        return offline_data.split((windows[order],), n_train, n_eval)

    def fe_data(self, root_dir):
        from fastestimator.dataset.data import shakespeare
        data, vocab = shakespeare.load_data(root_dir=root_dir, seq_length=self.seq_len + 1)
        self.vocab_size = len(vocab)
        windows = torch.tensor(data["x"]).long()
        n_eval = len(windows) // 10
        return (windows[:-n_eval],), (windows[-n_eval:],)

    def standin(self, n, generator):
        self.vocab_size = self.paper_vocab
        return (torch.randint(0, self.paper_vocab, (n, self.seq_len + 1), generator=generator),)

    def small_model(self):
        return paper_models.CharGRU(self.vocab_size, embed=self.width, hidden=4 * self.width)

    def paper_model(self):
        return paper_models.CharGRU(self.vocab_size)

    def step(self, model, batch):
        (window,) = batch
        logits = model(window[:, :-1])
        target = window[:, 1:]
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten())
        return loss, (logits.argmax(-1) == target).float().mean().item()
