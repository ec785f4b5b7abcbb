"""User-facing errors: bad config, data or checkpoint. Stage entry points print them as one line."""
from __future__ import annotations

import functools
import sys


class UserError(Exception):
    """Bad input that the user can fix; reported as one line naming the key or file."""


class ConfigError(UserError):
    """A config value is invalid (names the key)."""


class DataError(UserError):
    """A data file or directory is missing or unreadable (names the path)."""


class CheckpointError(UserError):
    """A checkpoint cannot be read (names the path)."""


class CorruptArtifact(DataError):
    """A file a stage wrote earlier is truncated, garbage or missing beside its DONE marker (names the path).
    The stage that owns the file redoes the run; a later stage that reads it refuses with this message."""


class WorkerLost(UserError):
    """A worker process died (killed by the OS or a user) while running a job (names the runs in flight).
    Nothing the run had finished is lost: rerunning the same command resumes it."""


def one_line(err: BaseException, limit: int = 300) -> str:
    """`Type: first line of the message`, at most `limit` characters: library errors (torch, pyarrow, h5py)
    can span many lines, and a stage reports a problem in one."""
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def exit_on_user_error(fn):
    """Decorator for stage entry points: a UserError becomes `error: <message>` and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)

    return wrapper
