"""Stage command lines: catch an unknown config-group choice (profile=nope, task=nope) as one clear line
before Hydra starts, instead of Hydra's multi-line listing. Everything else is Hydra's own parsing."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def group_options(group: str) -> set[str]:
    from hydra.core.config_store import ConfigStore

    import core.config  # noqa: F401  (registers schema nodes)

    options = {p.stem for p in (CONFIGS / group).glob("*.yaml")}
    try:
        options |= {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)}
    except OSError:
        pass
    return {o for o in options if not o.endswith("_schema")}


def unknown_choice(argv: list[str]) -> str | None:
    """The error line for the first `group=value` naming a value the group does not have, else None."""
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key.startswith("hydra/") or "." in key or not (CONFIGS / key).is_dir():
            continue
        if value.startswith(("choice(", "range(", "glob(", "interval(")):
            continue
        options = group_options(key)
        for choice in value.split(","):
            if choice and choice not in options:
                return f"{key}: unknown option '{choice}' (choose from {', '.join(sorted(options))})"
    return None


def run_stage(main: Callable[[], None]) -> None:
    """Entry point for `python -m <stage>`: pre-check group choices, then hand over to Hydra."""
    problem = unknown_choice(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()
