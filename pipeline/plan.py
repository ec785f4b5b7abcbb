"""`python -m pipeline.plan profile=paper [overrides]` (`make plan PROFILE=paper`): what the whole pipeline costs
before it runs, and the SLURM commands that run it.

Per stage and study: SLURM jobs (the size of the Hydra sweep), training runs (jobs that train, after the stage's
own skip rules: repeats beyond the profile's, the published ARC when paths.published_arc is unset, single-column
methods trained in one LR0 column), epochs, training steps and GPU-hours. Everything is derived from the composed
configs: each study's sweep (configs/experiment/*.yaml, `hydra.sweeper.params`) is expanded as Hydra's basic
sweeper expands it, and sizes come from each job's task config; steps per epoch from the task's batch size and the
training examples of its dataset (core.inputs.REGISTRY).

GPU-hours = training steps / steps per second. The rates are `make bench-gpu`'s measurements
(artifacts/bench/gpu.json, the option set matching profile.precision/channels_last/compile, else fp32) where that
file has the task: the three benchmark tasks, the selection proxy, each of the 12 datagen tasks' paper models and
ARC's candidate training. Otherwise the authors' logged rates (CIFAR10 58.9, MSCOCO 4.07, PTB 37.9 steps/s), an
assumed rate [I] (the proxy, ARC), or for datagen its tasks' `epoch_minutes` estimates (configs/datagen_task/).
Each row is marked `measured` (every rate behind it measured by bench-gpu on this machine) or `guessed`.
Evaluation time is not counted.

`--runs-per-task` prints only the datagen runs per task of the profile (the Makefile's SLURM sweep over run_index).
`--check-args profile=<p> [--studies="a b"] <overrides>` (`make check-args`, the first step of `make reproduce
ARGS=...`): composes the config of every command `make reproduce` runs with the overrides and names, in one line, the
first override a stage's config refuses (exit status 2).
"""
from __future__ import annotations

import copy
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

AUTHORS_STEPS_PER_S = {"cifar10": 58.9, "mscoco": 4.07, "ptb": 37.9}  # steps/s in the authors' logs (docs/experiments.md §9.2)
ASSUMED = {  # [I] no logged rate: what the plan assumes without a bench-gpu measurement
    "svhn_proxy": (58.9, "assumed = CIFAR10's logged rate [I]"),
    "arc": (100.0, "assumed [I]"),
}
MEASURED = "bench-gpu"  # the source label of a rate `make bench-gpu` measured
EPOCH_MINUTES = "epoch_minutes [I]"  # datagen's per-task estimate (configs/datagen_task/) where none is measured
BENCH_STUDIES = ("table2_cifar10", "table3_mscoco", "table4_ptb", "extended_baselines")  # make benchmark
PY = ".venv/bin/python"


@dataclass
class Row:
    stage: str
    study: str
    jobs: int = 0
    runs: int = 0
    epochs: int = 0
    steps: float = 0  # nan when unknown
    gpu_hours: float = 0.0
    rate: str = ""  # set directly, or from `rates`
    rates: dict = field(default_factory=dict)  # task -> (steps/s, where the number comes from)
    target_hours: float = math.nan  # at the project's H200 target rates (bench.bench_gpu.TARGETS_H200)
    notes: list[str] = field(default_factory=list)

    @property
    def basis(self) -> str:
        """'measured' when every rate behind the GPU-hours is a bench-gpu measurement of this machine, else 'guessed'
        (the authors' logged rates of their GPU, assumed rates, datagen's epoch_minutes estimates)."""
        sources = [source for _, source in self.rates.values()]
        return "measured" if sources and all(s.startswith(MEASURED) for s in sources) else "guessed"


class Planner:
    def __init__(self, overrides: list[str], bench_results: Path | None = None):
        from bench.bench_gpu import TARGETS_H200, options_key, results_path

        self.overrides = overrides
        self._cache: dict[tuple, DictConfig] = {}
        profile = self.compose("train", [])
        self.profile = profile.profile.name
        self.paths = profile.paths
        self.options = options_key(**OmegaConf.to_container(profile.profile, resolve=True))
        self.targets = TARGETS_H200
        self._read_results(bench_results or results_path())

    def _read_results(self, path: Path) -> None:
        self.measured = json.loads(path.read_text()) if path.is_file() else None
        self.results_path = path

    def with_bench_results(self, path: Path) -> "Planner":
        """This plan with the bench-gpu results of `path`: the same composed configs (composing every stage's sweep
        takes tens of seconds, and no config depends on the rates), other rates."""
        other = copy.copy(self)  # shares the composition cache
        other._read_results(path)
        return other

    # ---- configs -----------------------------------------------------------------------------------------
    def compose(self, name: str, extra: list[str], hydra: bool = False) -> DictConfig:
        from hydra import compose, initialize_config_dir

        import arc_model.config  # noqa: F401  (register the schemas)
        import datagen.config  # noqa: F401
        import experiments.config  # noqa: F401
        import selection.config  # noqa: F401
        from core.cli import CONFIGS

        key = (name, tuple(extra), hydra)
        if key not in self._cache:
            with initialize_config_dir(str(CONFIGS), version_base="1.3"):
                self._cache[key] = compose(name, [*self.overrides, *extra], return_hydra_config=hydra)
        return self._cache[key]

    @staticmethod
    def jobs(params: dict, extra: list[str] = ()) -> list[dict]:
        """The jobs of a sweep, each as {key: value string}, expanded as Hydra's basic sweeper does (core.sweep)."""
        from core.sweep import as_dict, job_overrides

        return [as_dict(job) for job in job_overrides(params, extra)]

    def sweep(self, name: str, extra: list[str] = ()) -> tuple[DictConfig, list[dict]]:
        from core.sweep import sweep_params

        base = self.compose(name, [], hydra=True)
        return base, self.jobs(sweep_params(base), extra)

    # ---- rates -------------------------------------------------------------------------------------------
    def measured_rate(self, task: str) -> tuple[float, str] | None:
        """The task's bench-gpu rate for the profile's option set (else its fp32 rate), or None."""
        tasks = (self.measured or {}).get("tasks", {})
        for key in (self.options, "fp32"):
            entry = tasks.get(task, {}).get(key)
            if entry and entry.get("steps_per_s", 0) > 0:
                return entry["steps_per_s"], f"{MEASURED} {key}"
        return None

    def rate(self, task: str) -> tuple[float, str]:
        measured = self.measured_rate(task)
        if measured:
            return measured
        if task in AUTHORS_STEPS_PER_S:
            return AUTHORS_STEPS_PER_S[task], "authors' log"
        return ASSUMED[task]

    def hours(self, steps: float, task: str, row: Row) -> None:
        rate, source = self.rate(task)
        row.gpu_hours += steps / rate / 3600 if math.isfinite(steps) else math.nan
        row.rates[task] = (rate, source)
        sources = sorted({s for _, s in row.rates.values()})
        if len(row.rates) == 1:
            row.rate = f"{rate:g}/s {source}"
        else:
            row.rate = ", ".join(f"{t} {r:g}" for t, (r, _) in row.rates.items()) + f" /s {'; '.join(sources)}"
        if task in self.targets:
            row.target_hours = (0 if math.isnan(row.target_hours) else row.target_hours) + steps / self.targets[task] / 3600

    # ---- steps per epoch ---------------------------------------------------------------------------------
    @staticmethod
    def steps_per_epoch(target: str, args: dict, batch_size: int, cap: int | None = None) -> float:
        """From the task's dataset (core.inputs.REGISTRY, via its paper_inputs) and batch size; nan without."""
        from pipeline.check_data import inputs_of

        datasets = [r.source for r in inputs_of(target, args) if r.source.kind == "dataset"]
        if not datasets or datasets[0].train_examples is None:
            return float(cap) if cap else math.nan
        source = datasets[0]
        steps = (source.train_examples // batch_size if source.drop_last
                 else math.ceil(source.train_examples / batch_size))
        return float(min(steps, cap) if cap else steps)

    # ---- stages ------------------------------------------------------------------------------------------
    def datagen(self, slurm: bool = True) -> Row:
        from datagen.plan import task_plan

        base, _ = self.sweep("datagen")
        tasks = str(base.hydra.sweeper.params.datagen_task).split(",")
        row = Row("1-2 datagen", base.get("experiment_name", "datagen_table1"))
        for name in tasks:
            cfg = self.compose("datagen", [f"datagen_task={name}"])
            plan = task_plan(cfg)
            args = OmegaConf.to_container(cfg.datagen_task.args, resolve=True)
            per_epoch = self.steps_per_epoch(cfg.datagen_task.target, args, args.get("batch_size", 32),
                                             cfg.datagen_task.max_steps_per_epoch)
            row.jobs += plan["runs"] if slurm else 1
            row.runs += plan["runs"]
            row.epochs += plan["epochs"]
            steps = plan["epochs"] * per_epoch
            row.steps += steps
            measured = self.measured_rate(name)
            if measured and math.isfinite(steps):  # bench-gpu timed this task's paper model
                row.gpu_hours += steps / measured[0] / 3600
                row.rates[name] = measured
            else:
                row.gpu_hours += plan["gpu_hours"]
                row.rates[name] = (math.nan, EPOCH_MINUTES)
        timed = sum(source.startswith(MEASURED) for _, source in row.rates.values())
        row.rate = (f"{MEASURED} ({timed} of {len(tasks)} tasks), {EPOCH_MINUTES} ({len(tasks) - timed})"
                    if 0 < timed < len(tasks) else f"{MEASURED} ({timed} tasks)" if timed else EPOCH_MINUTES)
        if timed < len(tasks):
            row.notes.append(f"{len(tasks) - timed} of {len(tasks)} tasks' GPU-hours from the epoch_minutes "
                             "estimates of configs/datagen_task/ [I] (make bench-gpu times them)")
        self.points = int(sum(self.compose("datagen", [f"datagen_task={t}"]).runs for t in tasks)
                          * base.points_per_run)
        return row

    def train_arc(self, experiment: str | None = None) -> Row:
        """Stage 3's ten candidates; with experiment=metric_candidates the metric study's five (30% held out)."""
        from core.sweep import sweep_params

        if experiment is None:
            base, jobs = self.sweep("train_arc")
        else:
            base = self.compose("train_arc", [f"experiment={experiment}"], hydra=True)
            jobs = self.jobs(sweep_params(base))
        row = (Row("3 train_arc", "candidates", jobs=len(jobs), runs=len(jobs)) if experiment is None
               else Row("5 metric-study", experiment, jobs=len(jobs), runs=len(jobs)))
        train_points = self.points * (1 - base.data.holdout)
        row.epochs = base.epochs * len(jobs)
        row.steps = row.epochs * math.ceil(train_points / base.batch_size)
        self.hours(row.steps, "arc", row)
        return row

    def selection(self) -> Row:
        base, jobs = self.sweep("selection")
        row = Row("4 selection", "proxy_selection", jobs=len(jobs))
        published = self.paths.published_arc is not None
        trained = [j for j in jobs if int(j.get("repeat", 0)) < base.repeats
                   and (j.get("candidate") != "published" or published)]
        row.runs = len(trained)
        row.epochs = row.runs * base.epochs
        task = OmegaConf.to_container(base.task, resolve=True)
        per_epoch = self.steps_per_epoch(task.pop("_target_"), task, task.get("batch_size", 128))
        row.steps = row.epochs * per_epoch
        self.hours(row.steps, "svhn_proxy", row)
        if not published:
            row.notes.append("candidate=published jobs skip (paths.published_arc unset)")
        return row

    def bench_task(self, name: str) -> tuple[DictConfig, float]:
        cfg = self.compose("benchmark", [f"bench_task={name}"])
        task = cfg.bench_task  # its sized fields hold this profile's size
        build = OmegaConf.to_container(task.build, resolve=True)
        per_epoch = self.steps_per_epoch(build.pop("_target_"), build, build.get("batch_size", 128),
                                         task.max_steps_per_epoch)
        return task, per_epoch

    def range_test(self) -> Row:
        base, jobs = self.sweep("range_test")
        row = Row("5 range-test", "range_test", jobs=len(jobs), runs=len(jobs))
        for job in jobs:
            name = job.get("bench_task", base.bench_task.name)
            task, _ = self.bench_task(name)
            row.epochs += task.range_epochs
            steps = task.range_epochs * task.range_steps_per_epoch
            row.steps += steps
            self.hours(steps, name, row)
        row.notes.append("each range-test 'epoch' is a full evaluation (not counted)")
        return row

    def schedule_kind(self, name: str) -> tuple[bool, bool]:
        """(trains in one LR0 column only, skipped because its weights are not configured)."""
        from hydra.utils import get_object

        from core.bench_run import single_lr0_column

        node = self.compose("benchmark", [f"schedule={name}"]).schedule
        single = single_lr0_column(get_object(node._target_))
        unset = "weights" in node and node.weights is None
        return single, unset

    def study(self, study: str) -> Row:
        from experiments.benchmark import epochs_of

        base, jobs = self._study_sweep(study)
        row = Row("5 benchmark" if study in BENCH_STUDIES else "5 " + study.replace("_", "-"), study, jobs=len(jobs))
        seen: set = set()
        skipped_unset = 0
        for job in jobs:
            task = job.get("bench_task", base.bench_task.name)
            schedule = job.get("schedule", base.schedule.name)
            single, unset = self.schedule_kind(schedule)
            if unset and "arc_candidate" not in job:
                skipped_unset += 1
                continue
            if single:  # one run per seed (and other keys), in one LR0 column
                key = (task, schedule, tuple(sorted((k, v) for k, v in job.items() if k not in ("lr0", "lr0_column"))))
                if key in seen:
                    continue
                seen.add(key)
            task_cfg, per_epoch = self.bench_task(task)
            frequency = int(job.get("schedule.frequency", base.schedule.get("frequency", 3) or 3))
            epochs = epochs_of(OmegaConf.create({"bench_task": {"epochs": task_cfg.epochs},
                                                 "schedule": {"frequency": frequency},
                                                 "scale_epochs_with_frequency": base.scale_epochs_with_frequency}))
            row.runs += 1
            row.epochs += epochs
            row.steps += epochs * per_epoch
            self.hours(epochs * per_epoch, task, row)
        if skipped_unset:
            row.notes.append(f"{skipped_unset} arc_published jobs skip (paths.published_arc unset)")
        return row

    def _study_sweep(self, study: str) -> tuple[DictConfig, list[dict]]:
        from core.sweep import sweep_params

        base = self.compose("benchmark", [f"experiment={study}"], hydra=True)
        return base, self.jobs(sweep_params(base))

    def rows(self) -> list[Row]:
        rows = [self.datagen(), self.train_arc(), self.selection(), self.range_test()]
        rows += [self.study(s) for s in BENCH_STUDIES]
        rows += [self.study("n_study"), self.train_arc("metric_candidates"), self.study("metric_study")]
        return rows

    # ---- commands ----------------------------------------------------------------------------------------
    def slurm_commands(self) -> list[tuple[str, list[str]]]:
        """What `make reproduce PROFILE=<p> LAUNCHER=slurm` runs, stage by stage (tests/test_slurm_pipeline.py
        checks the Makefile against it)."""
        p, launcher = self.profile, "hydra/launcher=slurm"
        runs = self.compose("datagen", []).runs
        login = "profile.device=cpu"  # the one-step commands run on the submitting (login) node
        stages = [("check-data", [f"{PY} -m pipeline.check_data profile={p}"])] if p == "paper" else []
        stages += [
            ("datagen", [f"{PY} -m datagen -m profile={p} {launcher} 'run_index=range(0,{runs})'",
                         f"{PY} -m datagen.correct profile={p}"]),
            ("train_arc", [f"{PY} -m arc_model profile={p} dry_run=true {login}",
                           f"{PY} -m arc_model -m profile={p} {launcher}", f"{PY} -m arc_model.candidates profile={p}",
                           f"{PY} -m arc_model.diagnose profile={p}"]),
            ("select", [f"{PY} -m selection -m profile={p} {launcher}", f"{PY} -m selection.pick profile={p} {login}"]),
            ("benchmark", [f"{PY} -m experiments.range_test -m profile={p} {launcher}"]
             + [f"{PY} -m experiments.benchmark -m experiment={s} profile={p} {launcher}" for s in BENCH_STUDIES]
             + [f"{PY} -m experiments.table profile={p}"]),
            ("n-study", [f"{PY} -m experiments.benchmark -m experiment=n_study profile={p} {launcher}",
                         f"{PY} -m experiments.table profile={p} experiment=n_study"]),
            ("metric-candidates", [f"{PY} -m arc_model -m experiment=metric_candidates profile={p} {launcher}",
                                   f"{PY} -m arc_model.candidates experiment=metric_candidates profile={p}"]),
            ("metric-study", [f"{PY} -m experiments.benchmark -m experiment=metric_study profile={p} {launcher}",
                              f"{PY} -m experiments.table profile={p} experiment=metric_study"]),
            ("figures", [f"{PY} -m figures profile={p}"]),
        ]
        return stages


# ---- make reproduce ARGS=... ---------------------------------------------------------------------------------
# The primary configs each stage of `make reproduce` composes, with what its command lines add. `make reproduce`
# hands ARGS to every command of every stage, so an override must apply to all of them.
STAGE_CONFIGS = {
    "check-data": [("datagen", []), ("selection", []), ("benchmark", [])],  # pipeline.check_data composes these
    "datagen": [("datagen", []), ("correct", [])],  # datagen, datagen.correct
    "train_arc": [("train_arc", [])],  # arc_model (pre-flight, candidates), arc_model.candidates
    "select": [("selection", [])],  # selection, selection.pick
    "benchmark": [("range_test", []), ("benchmark", [])],  # range tests, experiments.table; + one per study
    "n-study": [("benchmark", ["experiment=n_study"])],  # its runs and its table
    "metric-candidates": [("train_arc", ["experiment=metric_candidates"])],  # arc_model, arc_model.candidates
    "metric-study": [("benchmark", ["experiment=metric_study"])],  # its runs and its table
    "figures": [("figures", [])],
}


def reproduce_stages(profile: str, studies=BENCH_STUDIES) -> list[tuple[str, str, list[str]]]:
    """(stage, primary config, overrides its command adds) of every command `make reproduce PROFILE=<profile>` runs,
    in order: check-data on paper only (as the Makefile's reproduce target)."""
    out = []
    for stage, configs in STAGE_CONFIGS.items():
        if stage == "check-data" and profile != "paper":
            continue
        out += [(stage, config, list(extra)) for config, extra in configs]
        if stage == "benchmark":
            out += [(stage, "benchmark", [f"experiment={study}"]) for study in studies]
    return out


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def check_overrides(profile: str, args: list[str], studies=BENCH_STUDIES) -> str | None:
    """None when every Hydra override in `args` (make's ARGS) applies to every command of `make reproduce
    PROFILE=<profile>`; else one line naming the first override refused and the stage whose config refuses it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    import arc_model.config  # noqa: F401  (register the schemas)
    import datagen.config  # noqa: F401
    import experiments.config  # noqa: F401
    import figures.config  # noqa: F401
    import selection.config  # noqa: F401
    from core.cli import CONFIGS, unknown_choice

    parser = OverridesParser.create()
    for arg in args:
        key = arg.split("=", 1)[0].lstrip("+~")
        if key == "profile":
            return f"ARGS: '{arg}': pass the profile as PROFILE=..., not in ARGS"
        try:
            (override,) = parser.parse_overrides([arg])
        except HydraException as err:
            return f"ARGS: '{arg}' is not a Hydra override: {_first_line(err)}"
        if override.is_sweep_override():
            return (f"ARGS: '{arg}' is a sweep, which make reproduce cannot pass to every stage (its one-job commands "
                    "take one value): pass it to one stage target instead, e.g. make benchmark ARGS=...")
    problem = unknown_choice(args)
    if problem:
        return f"ARGS: {problem}"

    def refusal(config: str, overrides: list[str]) -> str | None:
        try:
            with initialize_config_dir(str(CONFIGS), version_base="1.3"):
                compose(config, overrides)
        except (HydraException, OmegaConfBaseException, ValueError, KeyError) as err:
            return _first_line(err)
        return None

    for stage, config, extra in reproduce_stages(profile, studies):
        base = [f"profile={profile}", *extra]
        why = refusal(config, [*base, *args])
        if why is None:
            continue
        culprit = next((arg for arg in args if refusal(config, [*base, arg]) is not None), " ".join(args))
        return (f"ARGS: '{culprit}' does not apply to stage {stage} (configs/{config}.yaml"
                f"{' ' + ' '.join(extra) if extra else ''}), and make reproduce passes ARGS to every stage: {why}")
    return None


def fmt(value: float, digits: int = 0) -> str:
    return "?" if isinstance(value, float) and math.isnan(value) else f"{value:,.{digits}f}"


def print_plan(planner: Planner) -> None:
    rows = planner.rows()
    source = (f"bench-gpu measurements ({planner.results_path}, set {planner.options}, "
              f"{planner.measured.get('device', '?')})" if planner.measured
              else "the authors' logged rates (no bench-gpu results at " f"{planner.results_path})")
    print(f"plan profile={planner.profile}: GPU-hours from {source}; training steps only")
    print("basis: measured = every rate behind the row's GPU-hours is a make bench-gpu measurement on this machine; "
          "guessed = the authors' logged rates (their GPU), assumed rates [I] or datagen's epoch_minutes [I]")
    if planner.profile != "paper":
        print(f"note: the rates are the paper tasks' GPU rates; profile {planner.profile} runs stand-in tasks, whose "
              "steps per epoch are unknown here (?)")
    header = (f"{'stage':16} {'study':20} {'jobs':>6} {'runs':>6} {'epochs':>9} {'steps':>13} {'GPU-h':>8} "
              f"{'basis':8}  rate")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.stage:16} {r.study:20} {r.jobs:>6,} {r.runs:>6,} {r.epochs:>9,} {fmt(r.steps):>13} "
              f"{fmt(r.gpu_hours, 1):>8} {r.basis:8}  {r.rate}")
        for note in r.notes:
            print(f"{'':16} {'':20} note: {note}")
    total = sum(r.gpu_hours for r in rows)
    studies = [r for r in rows if r.stage.startswith(("5 n-study", "5 metric-study"))]
    print("-" * len(header))
    print(f"{'of which':16} {'App. A.1, A.5':20} {sum(r.jobs for r in studies):>6,} {sum(r.runs for r in studies):>6,} "
          f"{sum(r.epochs for r in studies):>9,} {fmt(sum(r.steps for r in studies)):>13} "
          f"{fmt(sum(r.gpu_hours for r in studies), 1):>8}")
    print(f"{'total':16} {'make reproduce':20} {sum(r.jobs for r in rows):>6,} {sum(r.runs for r in rows):>6,} "
          f"{sum(r.epochs for r in rows):>9,} {fmt(sum(r.steps for r in rows)):>13} {fmt(total, 1):>8}")
    grid = [r for r in rows if r.study in BENCH_STUDIES[:3]]
    print(f"paper benchmark grid (Tables 2-4): {fmt(sum(r.gpu_hours for r in grid), 1)} GPU-h at these rates, "
          f"{fmt(sum(r.target_hours for r in grid), 1)} GPU-h at the H200 targets "
          f"({', '.join(f'{k} {v}' for k, v in planner.targets.items())} steps/s)")
    print(f"plan_runs={sum(r.runs for r in rows)} plan_steps={fmt(sum(r.steps for r in rows))} "
          f"plan_gpu_hours={fmt(total)}")
    print()
    print(f"SLURM: make reproduce PROFILE={planner.profile} LAUNCHER=slurm runs, stage by stage (multirun jobs go "
          "through configs/hydra/launcher/slurm.yaml; set the partition there or export SBATCH_PARTITION):")
    for target, commands in planner.slurm_commands():
        print(f"  make {target} PROFILE={planner.profile} LAUNCHER=slurm")
        for command in commands:
            print(f"      {command}")


def main(argv: list[str]) -> None:
    from core.errors import UserError

    overrides = [a for a in argv if not a.startswith("--")]
    if "--check-args" in argv:  # `make check-args`: profile=<PROFILE> first, then ARGS
        studies = next((a.split("=", 1)[1].split() for a in argv if a.startswith("--studies=")), BENCH_STUDIES)
        if not overrides or not overrides[0].startswith("profile="):
            print("usage: python -m pipeline.plan --check-args profile=<p> [--studies=\"a b\"] [overrides]", file=sys.stderr)
            sys.exit(2)
        profile, args = overrides[0].split("=", 1)[1], overrides[1:]
        problem = check_overrides(profile, args, studies)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            sys.exit(2)
        print(f"check-args: {' '.join(args) or '(none)'} apply to every stage of make reproduce PROFILE={profile}")
        return
    bench = next((Path(a.split("=", 1)[1]) for a in argv if a.startswith("--bench-results=")), None)
    try:
        planner = Planner(overrides, bench)
        if "--runs-per-task" in argv:
            print(planner.compose("datagen", []).runs)
            return
        print_plan(planner)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
