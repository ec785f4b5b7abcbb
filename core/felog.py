"""FastEstimator-format text logs (docs/experiments.md §9): a writer that FE 1.7's `parse_log_file` reads back,
and a tolerant parser that also keeps inf/nan and values with units (which FE's drops).

Line format (FE >= 1.2): `FastEstimator-<Mode>: step: <int>; key: value; ...` with keys after `step`
human-sorted and no trailing space. Numbers use `e-` notation only, so FE's regex accepts them.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import IO

import numpy as np


def format_value(value) -> str:
    """Python `str()` of a number as FE writes it, but never with a positive exponent (FE drops those)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value):
        return str(value)  # 'inf', '-inf', 'nan': FE's parser drops them, ours keeps them
    text = str(np.float32(value)) if abs(value) < 1e16 else np.format_float_positional(value, trim="-")
    if "e+" in text:
        text = np.format_float_positional(value, trim="-")
    return text


def _human_key(key: str):
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", key)]


def format_line(mode: str, step: int, values: dict) -> str:
    pairs = [f"step: {int(step)};"] + [f"{k}: {format_value(values[k])};" for k in sorted(values, key=_human_key)]
    return f"FastEstimator-{mode}: " + " ".join(pairs)


class FELogWriter:
    """Appends FE-format record lines to one file per run; line-buffered so a kill loses nothing."""

    def __init__(self, path: str | Path, append: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = open(self.path, "a" if append else "w", buffering=1)

    def write(self, mode: str, step: int, **values) -> None:
        self._file.write(format_line(mode, step, values) + "\n")

    def comment(self, text: str) -> None:
        """A non-record line (e.g. `multiplying lr by 1.618`), ignored by FE's parser."""
        self._file.write(text.rstrip("\n") + "\n")

    def start(self, logging_interval: int, num_device: int = 0) -> None:
        self.write("Start", 1, logging_interval=logging_interval, num_device=num_device)

    def tell(self) -> int:
        self._file.flush()
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


def open_log(path: str | Path, offset: int | None, logging_interval: int) -> FELogWriter:
    """A fresh log with its Start line (`offset` None), or after a restore the log cut back to the `offset`
    bytes it had at the checkpoint and appended to."""
    if offset is None:
        log = FELogWriter(path)
        log.start(logging_interval)
        return log
    with open(path, "a") as f:
        f.truncate(offset)
    return FELogWriter(path, append=True)


_NUM = r"-?\d+\.?\d*(?:e[-+]?\d+\.?\d*)?|-?inf|nan|None"
_PAIR = re.compile(rf"([^:;]+):\s*({_NUM}|\((?:{_NUM}), (?:{_NUM}), (?:{_NUM})\))(?:\s+[a-zA-Z/]+)?;")
_MODES = {"FastEstimator-Train": "train", "FastEstimator-Finish": "train", "FastEstimator-Eval": "eval",
          "FastEstimator-Test": "test"}


def parse_log(path: str | Path) -> dict[str, dict[str, dict[int, float]]]:
    """history[mode][key][step] = value, mirroring FE's parser but keeping inf/nan and `8.58 sec`."""
    history: dict[str, dict[str, dict[int, float]]] = {"train": {}, "eval": {}, "test": {}}
    for line in Path(path).read_text(errors="replace").splitlines():
        prefix, _, rest = line.partition(":")
        mode = _MODES.get(prefix.strip())
        if mode is None or not rest.strip().startswith("step"):
            continue
        pairs = _PAIR.findall(rest)
        if not pairs or pairs[0][0].strip() != "step":
            continue
        step = int(float(pairs[0][1]))
        for key, raw in pairs[1:]:
            key = key.strip()
            if raw == "None":
                continue
            value = tuple(float(v) for v in raw.strip("()").split(", ")) if raw.startswith("(") else float(raw)
            history[mode].setdefault(key, {})[step] = value
    return history


def read_comments(path: str | Path, prefix: str) -> list[str]:
    """Non-record lines that start with `prefix` (e.g. ARC's `multiplying lr by`)."""
    return [ln for ln in Path(path).read_text().splitlines() if ln.startswith(prefix)]
