"""`make check-data` (`python -m pipeline.check_data profile=<p> paths.data=... paths.weights=...`): every file a
profile reads from outside the repository, found or MISSING, before any work.

Which entries a profile reads is not listed here a second time: the command composes the stage configs of the
profile (every datagen task, the selection proxy, every benchmark task), imports each `_target_` and asks its
`paper_inputs(**args)` (the same function the loader checks with, against core.inputs.REGISTRY). It prints one line
per file: found or MISSING, the expected path and size, and which task reads it; the exit status is 1 when anything
is missing.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from core.inputs import GB, MB, REGISTRY, Required

# ---- what a profile reads ------------------------------------------------------------------------------------
def inputs_of(target: str, args: dict) -> list[Required]:
    """The registry entries the `_target_` built with `args` reads (its `paper_inputs`), or none."""
    from hydra.utils import get_object

    obj = get_object(target)
    paper_inputs = getattr(obj, "paper_inputs", None)
    return list(paper_inputs(**args)) if paper_inputs else []


def consumers(overrides: list[str]) -> tuple[list[tuple[str, str, dict]], dict]:
    """((reader, `_target_`, constructor arguments) of every loader the profile's stages build; the resolved paths
    group and profile name), from the composed configs: every datagen task of the Table-1 study, the selection
    proxy, every benchmark task."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import arc_model.config  # noqa: F401  (register the schemas)
    import datagen.config  # noqa: F401
    import experiments.config  # noqa: F401
    import selection.config  # noqa: F401
    from core.cli import CONFIGS

    out: list[tuple[str, str, dict]] = []
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        base = compose("datagen", overrides, return_hydra_config=True)
        paths = {**OmegaConf.to_container(base.paths, resolve=True), "profile": base.profile.name}
        for name in str(base.hydra.sweeper.params.datagen_task).split(","):
            cfg = compose("datagen", [*overrides, f"datagen_task={name}"])
            out.append((f"datagen {name}", cfg.datagen_task.target,
                        OmegaConf.to_container(cfg.datagen_task.args, resolve=True)))
        cfg = compose("selection", overrides)
        node = OmegaConf.to_container(cfg.task, resolve=True)
        out.append(("selection proxy", node.pop("_target_"), node))
        for name in sorted(p.stem for p in (CONFIGS / "bench_task").glob("*.yaml")):
            # SLS trains the authors' PyTorch ports (configs/bench_schedule/<task>_sls.yaml), whose inputs may differ
            for schedule, reader in (("constant", name), ("sls", f"{name}/sls")):
                cfg = compose("benchmark", [*overrides, f"bench_task={name}", f"schedule={schedule}"])
                node = OmegaConf.to_container(cfg.bench_task.build, resolve=True)
                out.append((f"benchmark {reader}", node.pop("_target_"), node))
    return out, paths


def profile_inputs(overrides: list[str]) -> tuple[list[tuple[Required, list[str]]], dict]:
    """(every file the profile's loaders read, each with the loaders that read it; the paths group), as each
    loader's `paper_inputs` gives them for its configured arguments."""
    readers_of: dict[Path, tuple[Required, list[str]]] = {}
    found, paths = consumers(overrides)
    for reader, target, args in found:
        for item in inputs_of(target, args):
            readers_of.setdefault(item.path, (item, []))[1].append(reader)
    return list(readers_of.values()), paths


def human(size: int) -> str:
    for unit, scale in (("GB", GB), ("MB", MB), ("kB", 1000)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def readers(names: list[str]) -> str:
    """'datagen a, b; benchmark c' from ['datagen a', 'datagen b', 'benchmark c']."""
    groups: dict[str, list[str]] = {}
    for name in names:
        stage, _, what = name.partition(" ")
        groups.setdefault(stage, []).append(what)
    return "; ".join(f"{stage} {', '.join(whats)}" for stage, whats in groups.items())


def report(rows: list[tuple[Required, list[str]]], paths: dict, profile: str) -> int:
    """Print the table; the number of missing files."""
    print(f"check-data profile={profile}  paths.data={os.path.abspath(paths['data'])}  "
          f"paths.weights={os.path.abspath(paths['weights'])}")
    if not rows:
        print(f"profile {profile} reads no dataset, tokenizer or weight file from outside the repository")
        return 0
    order = {name: i for i, name in enumerate(REGISTRY)}  # the 12 datagen datasets, the benchmarks', pretrained files
    rows = sorted(rows, key=lambda row: order[row[0].source.name])
    width = max(len(str(r.path)) for r, _ in rows)
    print(f"{'status':8} {'kind':9} {'input':18} {'expected path':{width}}  {'expected size':>13}  read by")
    absent = 0
    for item, names in rows:
        found = item.found()
        if found is None:
            status, absent = "MISSING", absent + 1
        elif found == item.path:
            status = "found"
        else:
            status = "found*"
        size = ("dir ≈" if item.expected.is_dir else "≈") + human(item.expected.size)
        print(f"{status:8} {item.source.kind:9} {item.source.name:18} {str(item.path):{width}}  {size:>13}  "
              f"{readers(names)}")
        if found is not None and found != item.path:
            print(f"{'':8} {'':9} {'':18} * found instead at {found}")
        elif found is None and item.alternatives:
            print(f"{'':8} {'':9} {'':18} or {' or '.join(map(str, item.alternatives))}")
        elif found is not None and found.is_file() and abs(found.stat().st_size - item.expected.size) > 0.1 * item.expected.size:
            print(f"{'':8} {'':9} {'':18} size {human(found.stat().st_size)} differs from the published file")
    sources = len({r.source.name for r, _ in rows})
    print(f"check-data: {sources} inputs, {len(rows)} files: {len(rows) - absent} found, {absent} missing")
    return absent


def main(argv: list[str]) -> None:
    from core.errors import UserError

    overrides = [a for a in argv if not a.startswith("-")]
    try:
        rows, paths = profile_inputs(overrides)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    absent = report(rows, paths, paths["profile"])
    if absent:
        print(f"error: {absent} input file(s) missing (put them at the paths above; nothing is downloaded)",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
