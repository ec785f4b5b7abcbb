"""`python -m figures [overrides]`: render a study's tables and curves (configs/figures.yaml).

Output: ${paths.figures}/<study>/tables.md, curves_<task>.png. Always re-rendered (cheap)."""
from pathlib import Path

from omegaconf import DictConfig

import figures.config  # noqa: F401  (registers the schema)
from core.artifacts import atomic_write_text, mark_done
from core.cli import stage
from core.errors import DataError
from core.results import study_rows
from figures.render import paper_table, plot_curves, to_markdown


def render(cfg: DictConfig) -> None:
    rows = study_rows(cfg.paths.benchmark, cfg.study)
    if rows.empty:
        raise DataError(f"no finished benchmark runs under {Path(cfg.paths.benchmark) / cfg.study} "
                        "(run `make benchmark` first)")
    out = Path(cfg.paths.figures) / cfg.study
    sections = []
    for task in sorted(rows.task.unique()):
        table = paper_table(rows, task, cfg.reference, cfg.alpha)
        sections.append(to_markdown(table, f"{task}: median best {rows[rows.task == task].metric.iloc[0]}"))
        print(f"{plot_curves(rows, task, out / f'curves_{task}.png')}")
    atomic_write_text(out / "tables.md", "\n".join(sections))
    mark_done(out, {"tasks": sorted(rows.task.unique()), "runs": len(rows)})
    print("\n".join(sections))


main = stage("figures")(render)

if __name__ == "__main__":
    main()
