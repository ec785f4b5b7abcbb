"""Small offline data for the smoke/mini profiles: shipped with installed packages or generated.

Each generator is deterministic in its `seed` and stands in for one paper dataset while keeping the task type:
  * digits (scikit-learn's 8x8 digits)     -> SVHN digits (tasks 1-3) and Omniglot pairs (task 9)
  * textures (generated oriented gratings)  -> Food-101 classification (tasks 4-5)
  * shapes (generated shapes + masks)       -> CUB-200 class + bird mask (tasks 6, 12)
  * lungs (generated two-ellipse X-rays)    -> Montgomery lung masks (task 11)
  * sentiment (generated bag of cue words)  -> IMDB reviews (task 7)
  * movie queries (generated BIO templates) -> MIT Movie NER (task 8)
  * Python's own docstrings (stdlib text)   -> Shakespeare character stream (task 10)
"""
from __future__ import annotations

import importlib

import numpy as np
import torch

from core.tasks.digits import digits_tensors


def split(tensors: tuple, n_train: int | None, n_eval: int | None) -> tuple[tuple, tuple]:
    """First n_eval rows for evaluation, the next n_train for training (data are already shuffled)."""
    n_eval = n_eval or len(tensors[0]) // 5
    stop = None if n_train is None else n_eval + n_train
    return tuple(t[n_eval:stop] for t in tensors), tuple(t[:n_eval] for t in tensors)


def digits(n_train, n_eval, seed):
    (x_train, y_train), (x_eval, y_eval) = digits_tensors(n_train, split_seed=seed)
    n_eval = n_eval or len(y_eval)
    return (x_train, y_train), (x_eval[:n_eval], y_eval[:n_eval])


def textures(n: int, size: int, classes: int, seed: int):
    """RGB gratings whose orientation/frequency pair is the class, with random phase, colour and noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    angle = np.pi * (labels % 5) / 5 + rng.normal(0, 0.15, n)
    freq = 1.5 + (labels // 5) * 1.5 + rng.normal(0, 0.2, n)
    yy, xx = np.mgrid[0:size, 0:size] / size
    proj = xx[None] * np.cos(angle)[:, None, None] + yy[None] * np.sin(angle)[:, None, None]
    wave = np.sin(2 * np.pi * freq[:, None, None] * proj + rng.uniform(0, 2 * np.pi, n)[:, None, None])
    colour = rng.uniform(0.2, 1.0, (n, 3, 1, 1))
    images = 0.5 + 0.4 * colour * wave[:, None] + rng.normal(0, 0.25, (n, 3, size, size))
    return torch.tensor(images, dtype=torch.float32), torch.tensor(labels, dtype=torch.long)


def shapes(n: int, size: int, seed: int, classes: int = 3):
    """RGB images of one ellipse/rectangle/triangle on a noisy background: (image, class, mask)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    labels = rng.integers(0, classes, n)
    centre = rng.uniform(0.3, 0.7, (n, 2))
    radius = rng.uniform(0.15, 0.3, (n, 2))
    dx = (xx[None] - centre[:, 0, None, None]) / radius[:, 0, None, None]
    dy = (yy[None] - centre[:, 1, None, None]) / radius[:, 1, None, None]
    ellipse = dx ** 2 + dy ** 2 <= 1
    rectangle = (np.abs(dx) <= 0.9) & (np.abs(dy) <= 0.9)
    triangle = (dy <= 1) & (np.abs(dx) <= (dy + 1) / 2)
    masks = np.where(labels[:, None, None] == 0, ellipse, np.where(labels[:, None, None] == 1, rectangle, triangle))
    fg, bg = rng.uniform(0, 1, (n, 3, 1, 1)), rng.uniform(0, 1, (n, 3, 1, 1))
    images = np.where(masks[:, None], fg, bg) + rng.normal(0, 0.3, (n, 3, size, size))
    return (torch.tensor(images, dtype=torch.float32), torch.tensor(labels, dtype=torch.long),
            torch.tensor(masks[:, None], dtype=torch.float32))


def lungs(n: int, size: int, seed: int):
    """Grey 'chest X-rays': two dark vertical ellipses (the lungs, the mask) in a bright noisy body."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    masks = np.zeros((n, size, size), bool)
    for side in (0.3, 0.7):
        cx = side + rng.normal(0, 0.04, n)
        cy = 0.5 + rng.normal(0, 0.05, n)
        rx, ry = rng.uniform(0.1, 0.17, n), rng.uniform(0.22, 0.35, n)
        masks |= ((xx[None] - cx[:, None, None]) / rx[:, None, None]) ** 2 + \
                 ((yy[None] - cy[:, None, None]) / ry[:, None, None]) ** 2 <= 1
    images = np.where(masks, 0.35, 0.75) + rng.normal(0, 0.25, (n, size, size))
    return torch.tensor(images[:, None], dtype=torch.float32), torch.tensor(masks[:, None], dtype=torch.float32)


def sentiment(n: int, length: int, vocab: int, seed: int):
    """Token sequences (0 = pad) whose label is which of 20 positive / 20 negative cue words dominate."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    neutral = rng.zipf(1.3, (n, length)) % (vocab - 41) + 41  # ids 41.. are neutral
    cues = rng.integers(2, 8, n)
    for i in range(n):
        doc_len = rng.integers(length // 2, length + 1)
        neutral[i, doc_len:] = 0
        majority = rng.binomial(cues[i], 0.8)
        words = np.concatenate([rng.integers(1, 21, majority), rng.integers(21, 41, cues[i] - majority)])
        words = words if labels[i] else np.where(words <= 20, words + 20, words - 20)
        neutral[i, rng.choice(doc_len, len(words), replace=False)] = words
    return torch.tensor(neutral, dtype=torch.long), torch.tensor(labels, dtype=torch.float32)


MOVIE_SLOTS = {
    "GENRE": ["comedy", "horror", "drama", "western", "science fiction", "romantic comedy", "thriller"],
    "ACTOR": ["tom hanks", "meryl streep", "brad pitt", "julia roberts", "denzel washington", "kate winslet"],
    "YEAR": ["1994", "2001", "the eighties", "the nineties", "2010", "1975"],
    "TITLE": ["the godfather", "star wars", "jaws", "the matrix", "toy story", "casablanca", "alien"],
    "DIRECTOR": ["steven spielberg", "james cameron", "sofia coppola", "ridley scott", "greta gerwig"],
}
MOVIE_TEMPLATES = [
    "show me {GENRE} movies with {ACTOR}", "who directed {TITLE}", "list {GENRE} films from {YEAR}",
    "was {ACTOR} in {TITLE}", "find movies by {DIRECTOR} starring {ACTOR}", "what {GENRE} did {DIRECTOR} make in {YEAR}",
    "i want a {GENRE} from {YEAR} with {ACTOR}", "is {TITLE} a {GENRE}", "any films by {DIRECTOR}",
]


def movie_queries(n: int, max_len: int, seed: int):
    """MIT-Movie-like BIO-tagged queries from templates: (word ids, tag ids, vocab size, tag count); 0 = pad."""
    rng = np.random.default_rng(seed)
    tags = ["<pad>", "O"] + [f"{p}-{slot}" for slot in MOVIE_SLOTS for p in ("B", "I")]
    words = ["<pad>"] + sorted({w for t in MOVIE_TEMPLATES for w in t.split() if "{" not in w}
                               | {w for v in MOVIE_SLOTS.values() for phrase in v for w in phrase.split()})
    word_id, tag_id = {w: i for i, w in enumerate(words)}, {t: i for i, t in enumerate(tags)}
    x, y = np.zeros((n, max_len), np.int64), np.zeros((n, max_len), np.int64)
    for i in range(n):
        tokens = []
        for part in MOVIE_TEMPLATES[rng.integers(len(MOVIE_TEMPLATES))].split():
            if part.startswith("{"):
                slot = part[1:-1]
                phrase = MOVIE_SLOTS[slot][rng.integers(len(MOVIE_SLOTS[slot]))].split()
                tokens += [(w, ("B-" if j == 0 else "I-") + slot) for j, w in enumerate(phrase)]
            else:
                tokens.append((part, "O"))
        tokens = tokens[:max_len]
        x[i, :len(tokens)] = [word_id[w] for w, _ in tokens]
        y[i, :len(tokens)] = [tag_id[t] for _, t in tokens]
    return torch.tensor(x), torch.tensor(y), len(words), len(tags)


STDLIB_MODULES = ("os", "json", "collections", "argparse", "functools", "itertools", "re", "random", "textwrap",
                  "pathlib", "subprocess", "logging", "unittest", "string", "heapq", "bisect", "csv", "shutil")


def python_docstrings(min_chars: int) -> str:
    """English prose that ships with every Python: docstrings of stdlib modules and their members, each distinct
    docstring once. A member's docstring is often its type's: os's 143 int constants (CLD_*, O_*, ...) all carry
    int's, and they sort first, so without the de-duplication the first 15 kB (mini's shakespeare_gru text) were
    95% int's docstring, 24 times over, eval windows repeated train windows, and the char GRU memorised them: val
    loss 0.35 nats/char at a run's end, 1.5-2.0 on distinct docstrings (mini, seed 0). Its labels hardly moved (58 ->
    59 of 60 'raise'): the six runs drew LR0 2e-5 to 6e-5, where a small GRU is under-trained either way."""
    parts, seen = [], set()
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        for doc in [module.__doc__] + [getattr(module, attr).__doc__ for attr in sorted(dir(module))
                                       if not attr.startswith("_")]:
            doc = (doc or "").strip()
            if doc and doc not in seen:
                seen.add(doc)
                parts.append(doc)
        if sum(map(len, parts)) >= min_chars:
            break
    text = "\n".join(parts)
    return "".join(c for c in text if c.isascii())[:min_chars]


def char_windows(text: str, seq_len: int, vocab: list[str] | None = None):
    """Non-overlapping windows of seq_len+1 character ids (input = [:-1], target = [1:])."""
    vocab = vocab or sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.array([index[c] for c in text], np.int64)
    windows = ids[: len(ids) // (seq_len + 1) * (seq_len + 1)].reshape(-1, seq_len + 1)
    return torch.tensor(windows), vocab
