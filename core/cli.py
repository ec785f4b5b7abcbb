"""Every stage's command line: `@stage("benchmark")` turns a function of the composed config into the
Hydra entry point `python -m <module> [overrides]`.

What each entry point gets from here, so no stage repeats it:
  * an unknown config-group choice (`profile=nope`) is one clear line before Hydra starts, not Hydra's
    multi-line listing;
  * the config is composed from `configs/` (`--config-name` picks another primary config);
  * every `sizes` block must hold the active profile (core.config.check_sizes);
  * a UserError (bad config, data or checkpoint) is `error: <message>` on stderr and exit status 2;
  * the stage's stdout and stderr also go to `${paths.artifacts}/logs/<config name>.log` (appended, one
    `=== <time> <module> <overrides> ===` header per run). The file is opened at the stage's first output, so a
    config or input that fails its checks before printing anything (every stage checks before it works) still
    writes nothing. Each Hydra multirun job tees itself, so SLURM and joblib jobs log there too.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import traceback
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def searchpath_dirs(argv: list[str]) -> list[Path]:
    """The `file://` directories of a `hydra.searchpath=[...]` override in `argv` (a user's own config directory,
    e.g. examples/own_task/configs): their groups' options are choices too."""
    dirs: list[Path] = []
    for arg in argv:
        if arg.startswith("hydra.searchpath="):
            entries = arg.split("=", 1)[1].strip("[]")
            dirs += [Path(e.strip().strip("'\"")[len("file://"):]) for e in entries.split(",")
                     if e.strip().strip("'\"").startswith("file://")]
    return dirs


def group_options(group: str, extra_dirs: list[Path] = ()) -> set[str]:
    from hydra.core.config_store import ConfigStore

    import core.config  # noqa: F401  (registers schema nodes)

    options = {p.stem for d in (CONFIGS, *extra_dirs) for p in (d / group).glob("*.yaml")}
    try:
        options |= {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)}
    except OSError:
        pass
    return {o for o in options if not o.endswith("_schema")}


def unknown_choice(argv: list[str]) -> str | None:
    """The error line for the first `group=value` naming a value the group does not have, else None."""
    extra = searchpath_dirs(argv)
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key.startswith("hydra/") or "." in key or not (CONFIGS / key).is_dir():
            continue
        if value.startswith(("choice(", "range(", "glob(", "interval(")):
            continue
        options = group_options(key, extra)
        for choice in value.split(","):
            if choice and choice not in options:
                return f"{key}: unknown option '{choice}' (choose from {', '.join(sorted(options))})"
    return None


class StageLog:
    """A stage's log file, created and opened for appending at the first write."""

    def __init__(self, path: Path, header: str):
        self.path, self.header, self.file = path, header, None

    def write(self, text: str) -> None:
        if not text:
            return
        if self.file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed by tee())
            self.file.write(self.header)
        self.file.write(text)

    def write_if_open(self, text: str) -> None:
        if self.file is not None:
            self.file.write(text)

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class _Tee:
    """A text stream that writes to `stream` and to a StageLog; everything else is the stream's.

    Something made during the stage may keep the tee (a logging handler a library adds on first use): once the
    stage is over (`detach`), the tee writes to whatever `sys.<name>` is then, and no longer to the log."""

    def __init__(self, stream, log: StageLog, name: str = "stderr"):
        self._stream, self._log, self._name, self._detached = stream, log, name, False

    def detach(self) -> None:
        self._detached = True

    def write(self, text: str) -> int:
        if self._detached:
            current = getattr(sys, self._name)
            target = current if current is not self else getattr(sys, f"__{self._name}__")
            return target.write(text)
        written = self._stream.write(text)
        try:
            self._log.write(text)
        except OSError:  # a full or read-only disk must not stop the stage
            pass
        return written

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._detached:
            return
        self._stream.flush()
        self._log.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def log_path(cfg, config_name: str) -> Path | None:
    """`${paths.artifacts}/logs/<config name>.log`, or None when the config has no artifacts path."""
    try:
        artifacts = cfg.paths.artifacts
    except Exception:  # noqa: BLE001 (a config without paths, or one that does not resolve)
        return None
    return Path(str(artifacts)) / "logs" / f"{config_name}.log" if artifacts else None


def _hydra_job() -> tuple[str, str | None]:
    """(this job's overrides, Hydra's config name) when Hydra runs the stage, else (the arguments, None)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            hydra_cfg = HydraConfig.get()
            return " ".join(hydra_cfg.overrides.task), hydra_cfg.job.config_name
    except Exception:  # noqa: BLE001
        pass
    return " ".join(sys.argv[1:]), None


def _module_name(module: str) -> str:
    """`python -m core.single_run` runs its function in `__main__`: name the module that was run instead."""
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = spec.name if spec is not None else Path(sys.argv[0]).stem
    return module.removesuffix(".__main__")


@contextlib.contextmanager
def tee_output(path: Path | None, module: str = "") -> Iterator[StageLog | None]:
    """While inside: sys.stdout, sys.stderr and the root logger's console handlers also write to `path`."""
    if path is None:
        yield None
        return
    overrides = _hydra_job()[0]
    stamp = datetime.now().isoformat(timespec="seconds")
    log = StageLog(path, f"=== {stamp} {module} {overrides} (pid {os.getpid()}) ===\n")
    saved = sys.stdout, sys.stderr
    tees = [_Tee(saved[0], log, "stdout"), _Tee(saved[1], log, "stderr")]
    sys.stdout, sys.stderr = tees
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in saved]
    streams = [h.stream for h in handlers]
    for handler, stream in zip(handlers, streams):
        tees.append(_Tee(stream, log, "stdout" if stream is saved[0] else "stderr"))
        handler.setStream(tees[-1])
    try:
        yield log
    except Exception as err:
        from core.errors import UserError

        with contextlib.suppress(OSError):
            if isinstance(err, UserError):  # the one-line error joins a log the stage already started
                log.write_if_open(f"error: {err}\n")
            else:  # a crash is logged even before any output (SLURM jobs have no terminal)
                log.write(traceback.format_exc())
        raise
    finally:
        for handler, stream in zip(handlers, streams):
            handler.setStream(stream)
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved
        for tee in tees:
            tee.detach()
        log.close()


def stage(config_name: str) -> Callable[[Callable], Callable[[], None]]:
    """Decorator: `main = stage("benchmark")(run)` is the Hydra entry point of `run(cfg)`."""

    def decorate(function: Callable) -> Callable[[], None]:
        import hydra

        from core.config import check_paths, check_sizes
        from core.errors import exit_on_user_error

        @exit_on_user_error
        def task(cfg) -> None:
            check_sizes(cfg, cfg.profile.name)
            check_paths(cfg)  # no two stages' output keys of the paths group overlap
            name = _hydra_job()[1] or config_name
            with tee_output(log_path(cfg, name), _module_name(function.__module__)):
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
            from core.runs import report_lost_workers

            with report_lost_workers(config_name):  # a killed joblib worker: one error line naming the runs
                hydra_main()

        main.run = task  # the undecorated stage, for tests that compose a config themselves
        return main

    return decorate
