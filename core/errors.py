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
