"""Deterministic stage outputs: `artifacts/<profile>/<stage>/<run>/` with the config and a DONE marker.

A rerun of the same command skips directories that hold the marker and resumes the others from
their checkpoint. Every file is written atomically (temp file + rename) so a kill never leaves a
half-written file behind. A file damaged anyway (a full disk, a copy cut short, another tool) is detected
where it is read: `read_done` and `check_parquet` raise CorruptArtifact naming it, the stage that owns the file
redoes that run (core.runs.resume_into), and a later stage that reads it refuses with that line.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

DONE_MARKER = "DONE"
# Every Parquet file of the pipeline is written and read with fastparquet, named here rather than left to pandas'
# "auto", which tries pyarrow first. The pyarrow once locked (26.0.1) does not import beside FastEstimator's numpy
# 1.26.4 ("pyarrow requires NumPy 2.0 or newer"): every read and write tried it, failed (~10 ms) and fell back to
# fastparquet, which therefore wrote every file so far (docs/measurements.md). fastparquet comes with FastEstimator.
PARQUET_ENGINE = "fastparquet"
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call write(tmp_path) and move the result to `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_parquet(path: str | os.PathLike, frame) -> Path:
    """`frame` (a pandas DataFrame) as the Parquet file `path`, without its index, in one rename."""
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False, engine=PARQUET_ENGINE))


def read_parquet(path: str | os.PathLike, **kwargs):
    """The Parquet file `path` as a pandas DataFrame (pandas.read_parquet's `kwargs`), with PARQUET_ENGINE."""
    import pandas as pd

    return pd.read_parquet(path, engine=PARQUET_ENGINE, **kwargs)


def config_digest(config: Any, length: int = 8) -> str:
    """Short stable hash of a JSON-able config, used to name run directories."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def location_free(cfg) -> dict:
    """`cfg` (a DictConfig) resolved to plain containers, with every `paths.*` value replaced by its name
    (`<paths.data>`): what a run computes, not where its files lie. A digest of it names the run, so the same
    experiment under another artifacts root gets the same run directories (a task's paper-profile `root_dir:
    ${paths.data}` once tied every benchmark run's name to the root)."""
    from omegaconf import OmegaConf, open_dict, read_write

    # masked in place and restored, not on a copy: a copy of the whole config was a third of the cost of naming a
    # run, and the table readers and the benchmark's sweeper name every run of a study (docs/measurements.md)
    paths = cfg.paths
    raw = OmegaConf.to_container(paths, resolve=False)  # the values as written, interpolations unresolved
    with read_write(paths), open_dict(paths):
        try:
            for key in raw:
                paths[key] = f"<paths.{key}>"
            return OmegaConf.to_container(cfg, resolve=True)
        finally:
            for key, value in raw.items():
                paths[key] = value


def is_done(run_dir: str | os.PathLike) -> bool:
    return (Path(run_dir) / DONE_MARKER).exists()


def mark_done(run_dir: str | os.PathLike, summary: dict | None = None) -> None:
    """Write the completion marker last; its content is a small JSON summary of the run."""
    atomic_write_text(Path(run_dir) / DONE_MARKER, json.dumps(summary or {}, sort_keys=True, default=str) + "\n")


def read_done(run_dir: str | os.PathLike) -> dict:
    """The JSON row of a DONE marker; CorruptArtifact naming the file when it is not a JSON object."""
    from core.errors import CorruptArtifact, one_line

    path = Path(run_dir) / DONE_MARKER
    try:
        row = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        raise CorruptArtifact(f"{path}: DONE marker not found") from None
    except (OSError, ValueError) as err:  # ValueError: bad JSON or bytes that are not UTF-8
        raise CorruptArtifact(f"{path}: unreadable DONE marker ({one_line(err)})") from None
    if not isinstance(row, dict):
        raise CorruptArtifact(f"{path}: unreadable DONE marker (a JSON {type(row).__name__}, not an object)")
    return row


def check_parquet(path: str | os.PathLike) -> Path:
    """`path` if it is a readable Parquet file (read whole, as read_parquet reads it); else CorruptArtifact naming it.
    The files checked are small (a run's epochs and steps), so a stage can check every finished run on a rerun."""
    from core.errors import CorruptArtifact, one_line

    path = Path(path)
    if not path.is_file():
        raise CorruptArtifact(f"{path}: missing")
    try:
        read_parquet(path)
    except Exception as err:  # noqa: BLE001 (the engines raise several types for truncated or foreign files)
        raise CorruptArtifact(f"{path}: not a readable Parquet file ({one_line(err)})") from None
    return path
