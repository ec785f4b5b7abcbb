"""`python -m figures [overrides]`: render the benchmark tables and curves (configs/figures.yaml).

Output: ${paths.artifacts}/figures/<stage>/tables.md, curves_<task>.png. Always re-rendered (cheap)."""
import json
from pathlib import Path

import hydra
from omegaconf import DictConfig

import figures.config  # noqa: F401  (registers the schema)
from core.artifacts import DONE_MARKER, atomic_write_text, mark_done
from core.cli import run_stage
from core.errors import DataError, exit_on_user_error
from experiments.table import collect
from figures.render import paper_table, plot_curves, to_markdown


@hydra.main(version_base="1.3", config_path="../configs", config_name="figures")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    source = Path(cfg.paths.artifacts) / "experiments" / cfg.stage
    rows = collect(cfg.paths.artifacts, cfg.stage)
    if rows.empty:
        raise DataError(f"no finished benchmark runs under {source} (run `make benchmark` first)")
    run_dirs = {}
    for done in source.glob(f"*/*/{DONE_MARKER}"):
        row = json.loads(done.read_text())
        run_dirs[(row["task"], row["schedule"], row["lr0"], row["seed"])] = done.parent
    out = Path(cfg.paths.artifacts) / "figures" / cfg.stage
    sections = []
    for task in sorted(rows.task.unique()):
        table = paper_table(rows, task, cfg.reference, cfg.alpha)
        sections.append(to_markdown(table, f"{task}: median best {rows[rows.task == task].metric.iloc[0]}"))
        print(f"{plot_curves(rows, task, run_dirs, out / f'curves_{task}.png')}")
    atomic_write_text(out / "tables.md", "\n".join(sections))
    mark_done(out, {"tasks": sorted(rows.task.unique()), "runs": len(rows)})
    print("\n".join(sections))


if __name__ == "__main__":
    run_stage(main)
