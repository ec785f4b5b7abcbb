"""`python -m figures [overrides]`: render a study's tables and figures (configs/figures.yaml). Always re-rendered.

source=runs (default), from ${paths.benchmark}/<study>/, into ${paths.figures}/<study>/:
  tables.md             Tables 2-4, compact (every schedule by name, `*` best, `#` t-test vs ARC), from the cells
  tables_paper.md       Tables 2-4 in the paper's layout (seven rows, then the others below a rule), `†` incomplete
                        cells with footnotes, the paper's values beside ours (paper tasks), the mean-rank summary
  tables.tex            the same tables, LaTeX (booktabs)
  cells.csv             the long form: task, schedule, lr0, metric, median_best, n_runs, n_expected, ci_low,
                        ci_high, p_ttest_vs_arc, p_mannwhitney_vs_arc, paper_value, ... (figures.cells)
  ranks.csv             mean rank per schedule across tasks and LR0 columns
  fig03-05_curves_<task>, fig10-12_boxes_<task>, fig06_arc_failures, fig13_arc_runs_<task>_lr<LR0> (.png, .pdf)
  (n_study: fig14_n_study; metric_study: fig07_metric_study)
With study=benchmark also (`supplementary`): the n-study's and metric study's folders, and in ${paths.figures}/
fig08_proxy_scores, fig09_range_tests, label_distribution, arc_decisions (every ARC model's actions on held-out
points and the benchmark ARC rows' calls) with its table arc_decisions_heldout.csv (figures.decisions); last
${paths.artifacts}/REPORT.md. A figure whose data do not exist is skipped with one line naming the command that
produces them.

source=fe_logs logs_dir=DIR: the authors' FastEstimator logs (figures.fe_logs) into ${paths.figures}/fe_logs/
(runs/ holds the logs as run directories), with the same tables and figures and a REPORT.md there.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

import figures.config  # noqa: F401  (registers the schema)
from core.artifacts import atomic_write_text, is_done, mark_done, read_done
from core.bench_run import named_runs, reader_overrides, single_column_schedules
from core.cli import CONFIGS, stage
from core.errors import ConfigError, DataError
from core.results import study_rows
from figures import plots
from figures.cells import CELL_COLUMNS, CellOptions, mean_ranks, place, task_cells, task_grid
from figures.expected import expected_runs, unfinished_runs
from figures.paper import BOX_FIGURE, CURVE_FIGURE, TABLE_NUMBER, paper_values, task_label, use_stand_ins
from figures.metric_study import markdown_frame, rank_correlations
from figures.study_sweeps import routed, study_seeds
from figures.tables import (compact_markdown, latex_table, markdown_table, paper_only_table, rank_markdown,
                            side_by_side)


def skip(what: str, why: str, command: str) -> None:
    print(f"skip: {what}: {why}; `{command}` produces it")


def render_study(cfg: DictConfig, rows: pd.DataFrame, out: Path, study: str, expected: dict, unfinished: list,
                 paper: pd.DataFrame | None, bench_rows: pd.DataFrame | None = None) -> dict:
    """Every table and figure of one study; returns what the report needs."""
    opts = CellOptions.from_cfg(cfg)
    formats, dpi = list(cfg.formats), cfg.dpi
    tasks = sorted(rows.task.unique())
    sections, all_cells, warnings, placed_rows, tables, figures = [], [], [], [], [], []
    paper_md, latex = [], []
    for task in tasks:
        grid = task_grid(rows[rows.task == task], opts.single_column, expected.get(task))
        placed_rows.append(place(rows[rows.task == task], grid)[0])
        cells, warn, notes = task_cells(rows, task, opts, expected.get(task), unfinished, paper)
        warnings += warn
        if cells.empty:
            print(f"skip: {task}: no LR0 column to tabulate in the paper's layout")
            continue
        all_cells.append(cells)
        sections.append(compact_markdown(cells, cfg.reference))
        ours = markdown_table(cells, study) + ("\n" + "".join(f"- {n}\n" for n in notes) if notes else "")
        beside = side_by_side(cells) if paper is not None else ""
        if not beside and study == "benchmark" and task in TABLE_NUMBER:
            beside = ("The paper's values, on the paper's own task (this profile runs a stand-in, so the numbers "
                      "are not comparable):\n\n" + paper_only_table(paper_values(), task))
        paper_md += [ours, beside] if beside else [ours]
        latex.append(latex_table(cells, study))
        tables.append((task, ours, beside))
    for line in warnings:
        print(f"warning: {line}")
    cells = pd.concat(all_cells, ignore_index=True) if all_cells else pd.DataFrame(columns=CELL_COLUMNS)
    rows_placed = pd.concat(placed_rows, ignore_index=True)
    ranks = mean_ranks(cells)
    header = ["# " + (f"Tables 2-4: {study}" if study in ("benchmark", "fe_logs") else f"Tables: {study}"), "",
              "Cell: the median over runs of each run's best eval value (accuracy x100 in %, mAP, perplexity). "
              f"`*` best median of the LR0 column; `#` Student's t-test against {cfg.reference.upper()}'s runs, "
              f"p < {cfg.alpha:g}; `†` an incomplete cell (footnotes name the missing runs). The long form with "
              "bootstrap 95% CIs and Mann-Whitney p-values is cells.csv.", ""]
    atomic_write_text(out / "tables.md", "\n".join(sections))
    atomic_write_text(out / "tables_paper.md", "\n".join(header + paper_md + [rank_markdown(ranks)]))
    atomic_write_text(out / "tables.tex", "% generated by python -m figures; needs \\usepackage{booktabs}\n\n"
                      + "\n".join(latex))
    atomic_write_text(out / "cells.csv", cells.to_csv(index=False))
    atomic_write_text(out / "ranks.csv", ranks.to_csv(index=False))
    print(f"{out / 'tables.md'}\n{out / 'tables_paper.md'}\n{out / 'tables.tex'}\n{out / 'cells.csv'}")

    def keep(caption: str, paths: list[Path]):
        for p in paths:
            print(p)
        if paths:
            figures.append((caption, paths[0]))

    if not cfg.plots:
        pass
    elif study in ("benchmark", "fe_logs"):
        for task in tasks:
            grid = task_grid(rows[rows.task == task], opts.single_column, expected.get(task))
            number = CURVE_FIGURE.get(task)
            stem = out / (f"fig{number:02d}_curves_{task}" if number else f"curves_lr_{task}")
            keep(f"Fig. {number or ''} {task_label(task)}: median runs, LR and metric",
                 plots.curves(rows_placed, task, grid, stem, opts.paper_rows, opts.single_column, formats, dpi))
            number = BOX_FIGURE.get(task)
            stem = out / (f"fig{number:02d}_boxes_{task}" if number else f"boxes_{task}")
            keep(f"Fig. {number or ''} {task_label(task)}: every run per cell",
                 plots.boxes(rows_placed, task, grid, stem, opts.paper_rows, formats, dpi))
        paths = plots.failures(rows_placed, out / "fig06_arc_failures", cfg.failure_runs, cfg.reference, formats, dpi)
        if paths:
            keep("Fig. 6: ARC failure modes", paths)
        else:
            skip("Fig. 6 (ARC failure modes)", f"no {cfg.reference} runs",
                 "make benchmark" if study == "benchmark" else "the ARC logs")
        task = cfg.fig13_task
        arc = rows_placed[(rows_placed.task == task) & (rows_placed.schedule == cfg.reference)]
        if arc.empty:
            skip(f"Fig. 13 ({task} ARC runs)", f"no {cfg.reference} runs of {task}",
                 "make benchmark" if study == "benchmark" else "the logs of that task")
        else:
            lr0 = cfg.fig13_lr0 if ((arc.lr0 - cfg.fig13_lr0).abs() <= 1e-9).any() else float(arc.lr0.max())
            keep(f"Fig. 13: {task_label(task)} ARC runs at LR0 {lr0:g}",
                 plots.arc_runs(rows_placed, task, lr0, out / f"fig13_arc_runs_{task}_lr{lr0:g}", cfg.reference,
                                formats, dpi))
    elif study == "n_study":
        keep("Fig. 14: invocation frequency", plots.n_study(rows, out / "fig14_n_study", formats, dpi))
    elif study == "metric_study":
        keep("Fig. 7: metric study", plots.metric_study(rows, bench_rows, out / "fig07_metric_study", formats, dpi))
    if study == "metric_study":
        correlations = rank_correlations(rows, cfg.paths.candidates)
        atomic_write_text(out / "metric_rank_correlation.csv", correlations.to_csv(index=False))
        sections.append("### Metric study: Spearman correlation of each held-out metric with the downstream median "
                        "best value\n\n" + markdown_frame(correlations))
    mark_done(out, {"tasks": tasks, "runs": len(rows), "incomplete": len(warnings)})
    print("\n".join(sections))
    return {"cells": cells, "rows": rows_placed, "warnings": warnings, "tables": tables, "figures": figures}


def paper_tasks(cfg: DictConfig) -> bool:
    if cfg.paper_tasks is not None:
        return bool(cfg.paper_tasks)
    return cfg.source == "fe_logs" or cfg.profile.name == "paper"


def study_named_rows(cfg: DictConfig, study: str) -> tuple[pd.DataFrame, list[Path]]:
    """(the finished runs of `study` that this profile's and paths' benchmark config names, those names): runs of
    another ARC model or other settings on disk are ignored (core.bench_run.named_runs)."""
    import experiments.config  # noqa: F401  (the benchmark schema the runs are named from) [I] a schema, not code

    seeds = [f"seed={','.join(str(s) for s in cfg.expected_seeds)}"] if cfg.expected_seeds is not None else []
    named = named_runs(study, reader_overrides(cfg) + seeds)
    rows = study_rows(cfg.paths.benchmark, study, named.runs)
    for line in named.report() if not rows.empty else []:  # none: the caller's one line (or skip) says so
        print(line)
    return rows, named.runs


def render_runs(cfg: DictConfig, study: str, bench_rows: pd.DataFrame | None = None) -> dict | None:
    cfg = routed(cfg, study)  # the metric study's candidates: paths.metric_candidates (figures.study_sweeps)
    rows, named = study_named_rows(cfg, study)
    if rows.empty:
        return None
    seeds = (list(cfg.expected_seeds) if cfg.expected_seeds is not None
             else study_seeds(study, cfg.profile.name, cfg.experiment_configs))  # the profile's, where sized
    expected = expected_runs(study, list(single_column_schedules()), cfg.experiment_configs, seeds)
    unfinished = unfinished_runs(Path(cfg.paths.benchmark) / study, expected, named)
    out = Path(cfg.out_dir) if cfg.out_dir and study == cfg.study else Path(cfg.paths.figures) / study
    paper = paper_values() if paper_tasks(cfg) else None
    return render_study(cfg, rows, out, study, expected, unfinished, paper, bench_rows)


def supplementary(cfg: DictConfig, bench: dict, heldout: pd.DataFrame) -> list[tuple[str, Path]]:
    """Figs 7, 8, 9, 14, the label mix and ARC's decisions (heldout: figures.decisions.heldout_table), each when
    its data exist."""
    formats, dpi, figures_dir = list(cfg.formats), cfg.dpi, Path(cfg.paths.figures)
    found: list[tuple[str, Path]] = []
    for study, what, command in (("n_study", "Fig. 14 (invocation frequency)", "make n-study"),
                                 ("metric_study", "Fig. 7 (metric study)", "make metric-study")):
        result = render_runs(cfg, study, bench["rows"])
        if result is None:
            skip(what, f"no finished runs under {Path(cfg.paths.benchmark) / study}", command)
        else:
            found += result["figures"]
    if not cfg.plots:
        return found
    sc = bench["rows"][bench["rows"].schedule == "sc"].dropna(subset=["run_lr0"])
    sc_lr0 = {t: float(g.run_lr0.iloc[0]) for t, g in sc.groupby("task")}
    paths = plots.range_tests(Path(cfg.paths.benchmark) / "range_test", figures_dir / "fig09_range_tests", sc_lr0,
                              formats, dpi)
    if paths:
        found.append(("Fig. 9: LR range tests", paths[0]))
        print("\n".join(map(str, paths)))
    else:
        skip("Fig. 9 (LR range tests)", f"no finished range test under {Path(cfg.paths.benchmark) / 'range_test'}",
             "make range-test")
    selection = Path(cfg.paths.selection)
    if (selection / "scores.csv").is_file():
        done = read_done(selection) if is_done(selection) else None
        paths = plots.proxy_scores(pd.read_csv(selection / "scores.csv"), done, figures_dir / "fig08_proxy_scores",
                                   formats, dpi)
        found += [("Fig. 8: proxy scores of the ARC candidates", paths[0])] if paths else []
        print("\n".join(map(str, paths)))
    else:
        skip("Fig. 8 (proxy scores)", f"no {selection / 'scores.csv'}", "make select")
    report = Path(cfg.paths.dataset) / "report.csv"
    if report.is_file():
        table = pd.read_csv(report)
        paths = plots.label_mix(table, figures_dir / "label_distribution", formats, dpi)
        found += [("ARC training set: label mix before and after correction", paths[0])] if paths else []
        print("\n".join(map(str, paths)))
    else:
        skip("label distribution", f"no {report}", "make datagen")
    paths = plots.arc_decisions(heldout, plots.decision_counts(bench["rows"]), figures_dir / "arc_decisions",
                                formats, dpi)
    found += [("ARC's decisions: held-out points and benchmark calls (raise / keep / decrease)", paths[0])] \
        if paths else []
    print("\n".join(map(str, paths)))
    if not paths:
        skip("ARC's decisions", "no held-out decisions and no benchmark ARC runs", "make train_arc")
    return found


def write_run_report(cfg: DictConfig, bench: dict, extra_figures: list[tuple[str, Path]],
                     heldout: tuple[pd.DataFrame, list[str]]) -> Path:
    from figures.report import (dataset_markdown, decisions_markdown, heldout_markdown, selection_markdown,
                                stage_times, write_report)

    artifacts = Path(cfg.paths.artifacts)
    intro = [f"Profile `{cfg.profile.name}`, written by `python -m figures` (the last step of `make reproduce`) from "
             f"the artifacts under `{artifacts}`. Tables and figures live in `{Path(cfg.paths.figures)}`; the long "
             "form of every cell (CI, p-values, paper value, run counts) is `figures/benchmark/cells.csv`."]
    if cfg.profile.name != "paper":
        intro.append("This profile trains stand-ins of the paper's tasks (configs/bench_task/), so our numbers test "
                     "the claims' direction, not the paper's values.")
    times = stage_times(artifacts, Path(cfg.paths.benchmark), Path(cfg.paths.selection), Path(cfg.paths.candidates))
    path = write_report(artifacts / "REPORT.md", f"ARC reproduction report ({cfg.profile.name})", intro,
                        bench["cells"], bench["rows"], bench["tables"], bench["figures"] + extra_figures,
                        bench["warnings"], selection_markdown(Path(cfg.paths.selection)) or
                        "No selection result (`make select` produces it).", times,
                        decisions_table=decisions_markdown(bench["rows"]),
                        dataset=dataset_markdown(Path(cfg.paths.dataset)), heldout=heldout_markdown(*heldout))
    print(path)
    return path


def render_fe_logs(cfg: DictConfig) -> None:
    from figures.fe_logs import convert, expected_logs
    from figures.report import write_report

    if not cfg.logs_dir:
        raise ConfigError("source=fe_logs needs logs_dir=DIR (a directory holding normal_comparison/ and "
                          "meta_comparison/)")
    out = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.paths.figures) / "fe_logs"
    summary = convert(cfg.logs_dir, out / "runs" / "fe_logs", cfg.fe_logs)
    for line in summary["duplicates"]:
        print(f"duplicate log skipped: {line}")
    for line in summary["ignored"]:
        print(f"not a benchmark log, ignored: {line}")
    rows = study_rows(out / "runs", "fe_logs")
    if rows.empty:
        raise DataError(f"logs_dir: no complete run among the logs under {cfg.logs_dir}")
    tasks = sorted(set(rows.task) | {u["task"] for u in summary["incomplete"]})
    expected = expected_logs(tasks, cfg.fe_logs, list(single_column_schedules()))
    paper = paper_values() if paper_tasks(cfg) else None
    result = render_study(cfg, rows, out, "fe_logs", expected, summary["incomplete"], paper)
    intro = [f"From the FastEstimator logs under `{cfg.logs_dir}` ({summary['runs']} complete runs, "
             f"{len(summary['incomplete'])} incomplete, {len(summary['duplicates'])} duplicates skipped), rendered "
             "by `python -m figures source=fe_logs`."]
    print(write_report(out / "REPORT.md", "Tables and claims from FastEstimator logs", intro, result["cells"],
                       result["rows"], result["tables"], result["figures"], result["warnings"]))


def stand_ins(profile: str) -> dict[str, str]:
    """{task: its stand-in's name} for this profile's benchmark tasks (configs/bench_task/*.yaml)."""
    names = {}
    for path in sorted((CONFIGS / "bench_task").glob("*.yaml")):
        node = OmegaConf.load(path)
        name = OmegaConf.select(node, f"sizes.{profile}.stand_in")
        if name:
            names[str(node.name)] = str(name)
    return names


def render(cfg: DictConfig) -> None:
    if cfg.source == "fe_logs":
        use_stand_ins({})  # the authors' runs of the paper's own tasks
        render_fe_logs(cfg)
        return
    if cfg.source != "runs":
        raise ConfigError(f"source must be 'runs' or 'fe_logs', got {cfg.source!r}")
    use_stand_ins(stand_ins(cfg.profile.name))
    bench_rows = study_named_rows(cfg, "benchmark")[0] if cfg.study == "metric_study" else None
    result = render_runs(cfg, cfg.study, bench_rows)
    if result is None:
        raise DataError(f"no finished benchmark runs under {Path(cfg.paths.benchmark) / cfg.study} "
                        "(run `make benchmark` first)")
    if cfg.study == "benchmark" and cfg.supplementary:
        from figures.decisions import heldout_table

        heldout = heldout_table(cfg)
        write_run_report(cfg, result, supplementary(cfg, result, heldout[0]), heldout)


main = stage("figures")(render)

if __name__ == "__main__":
    main()
