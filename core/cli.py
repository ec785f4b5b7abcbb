"""Every stage's command line: `@stage("benchmark")` turns a function of the composed config into the
Hydra entry point `python -m <module> [overrides]`.

What each entry point gets from here, so no stage repeats it:
  * an unknown config-group choice (`profile=nope`) is one clear line before Hydra starts, not Hydra's
    multi-line listing;
  * the config is composed from `configs/` (`--config-name` picks another primary config);
  * every `sizes` block must hold the active profile (core.config.check_sizes);
  * a UserError (bad config, data or checkpoint) is `error: <message>` on stderr and exit status 2.
"""
from __future__ import annotations

import functools
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


def stage(config_name: str) -> Callable[[Callable], Callable[[], None]]:
    """Decorator: `main = stage("benchmark")(run)` is the Hydra entry point of `run(cfg)`."""

    def decorate(function: Callable) -> Callable[[], None]:
        import hydra

        from core.config import check_sizes
        from core.errors import exit_on_user_error

        @exit_on_user_error
        def task(cfg) -> None:
            check_sizes(cfg, cfg.profile.name)
            function(cfg)

        task.__name__ = task.__qualname__ = function.__name__
        task.__module__ = function.__module__
        hydra_main = hydra.main(version_base="1.3", config_path=str(CONFIGS), config_name=config_name)(task)

        @functools.wraps(function)
        def main() -> None:
            problem = unknown_choice(sys.argv[1:])
            if problem:
                print(f"error: {problem}", file=sys.stderr)
                sys.exit(2)
            hydra_main()

        main.run = task  # the undecorated stage, for tests that compose a config themselves
        return main

    return decorate
