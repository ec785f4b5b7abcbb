"""Dataset-file checks shared by the paper-profile tasks."""
from __future__ import annotations

from pathlib import Path

from core.errors import DataError


def require_files(*paths: str | Path, dataset: str) -> None:
    """Fail before any work (and before FE's loaders would try to download) if a data file is missing."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise DataError(f"{dataset}: missing {', '.join(missing)} (put the dataset under paths.data; "
                        f"nothing is downloaded)")
