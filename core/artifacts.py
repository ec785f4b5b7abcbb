"""Deterministic stage outputs: `artifacts/<profile>/<stage>/<run>/` with the config and a DONE marker.

A rerun of the same command skips directories that hold the marker and resumes the others from
their checkpoint. Every file is written atomically (temp file + rename) so a kill never leaves a
half-written file behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

DONE_MARKER = "DONE"
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


def config_digest(config: Any, length: int = 8) -> str:
    """Short stable hash of a JSON-able config, used to name run directories."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def is_done(run_dir: str | os.PathLike) -> bool:
    return (Path(run_dir) / DONE_MARKER).exists()


def mark_done(run_dir: str | os.PathLike, summary: dict | None = None) -> None:
    """Write the completion marker last; its content is a small JSON summary of the run."""
    atomic_write_text(Path(run_dir) / DONE_MARKER, json.dumps(summary or {}, sort_keys=True, default=str) + "\n")


def read_done(run_dir: str | os.PathLike) -> dict:
    return json.loads((Path(run_dir) / DONE_MARKER).read_text() or "{}")
