"""The Makefile. `make reproduce ARGS="..."`: the overrides reach every command of every stage, and one that a stage's
config lacks is refused up front, in one line naming it and the stage; `make check-data` passes the paths overrides."""
from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import REPO

NOT_SETUP = ["-o", ".venv/.installed"]  # never (re)install the venv from a test


def make(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *NOT_SETUP, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def stage_commands(out: str) -> list[str]:
    """The Python commands `make -n` prints, the loop over the benchmark studies expanded."""
    lines, commands = out.splitlines(), []
    for i, line in enumerate(lines):
        loop = re.match(r"for study in (.*); do \\", line)
        if loop:
            body = lines[i + 1].strip().removesuffix("|| exit 1; \\")
            commands += [body.replace("$study", study) for study in loop.group(1).split()]
        elif line.startswith(".venv/bin/python") and " -m pip " not in line:
            commands.append(" ".join(line.split()))
    return commands


def test_make_reproduce_passes_args_to_every_stage_command():
    out = make("-n", "reproduce", "PROFILE=smoke", "ARGS=profile.device=cpu")
    assert out.returncode == 0, out.stderr
    commands = stage_commands(out.stdout)
    modules = [re.search(r" -m (\S+)", c).group(1) for c in commands]
    assert modules[0] == "pipeline.plan" and "--check-args" in commands[0]  # the check comes first
    for module in ("datagen", "datagen.correct", "arc_model", "arc_model.candidates", "selection", "selection.pick",
                   "experiments.range_test", "experiments.benchmark", "experiments.table", "figures"):
        assert module in modules, module
    missing = [c for c in commands if "profile.device=cpu" not in c.split()]
    assert not missing, missing


@pytest.mark.parametrize("profile", ["smoke", "mini", "paper"])
def test_make_reproduce_runs_the_appendix_studies_on_every_profile(profile):
    """App. A.5 and A.1 (docs/experiments.md §10): the n-study, the metric study's own candidates and the metric
    study, before the figures; their seeds come from the studies' sizes, not from the command line."""
    out = make("-n", "reproduce", f"PROFILE={profile}")
    assert out.returncode == 0, out.stderr
    commands = stage_commands(out.stdout)
    wanted = [f"-m experiments.benchmark -m experiment=n_study profile={profile}",
              f"-m experiments.table profile={profile} experiment=n_study",
              f"-m arc_model -m experiment=metric_candidates profile={profile}",
              f"-m arc_model.candidates experiment=metric_candidates profile={profile}",
              f"-m experiments.benchmark -m experiment=metric_study profile={profile}",
              f"-m experiments.table profile={profile} experiment=metric_study",
              f"-m figures profile={profile}"]
    at = [next(i for i, c in enumerate(commands) if w in c) for w in wanted]
    assert at == sorted(at)  # in this order, the figures last
    assert not any("seed=" in c for c in commands)


def test_make_reproduce_on_paper_passes_args_to_check_data():
    out = make("-n", "reproduce", "PROFILE=paper", "ARGS=profile.device=cpu")
    assert out.returncode == 0, out.stderr
    check = next(c for c in stage_commands(out.stdout) if "-m pipeline.check_data" in c)
    assert "profile.device=cpu" in check.split()


def test_make_reproduce_without_args_runs_no_check():
    out = make("-n", "reproduce", "PROFILE=smoke")
    assert out.returncode == 0, out.stderr
    assert "check-args" not in out.stdout


@pytest.mark.slow
def test_make_check_args_accepts_an_override_every_stage_has():
    out = make("check-args", "PROFILE=smoke", "ARGS=profile.device=cpu paths.weights=/nowhere", timeout=300)
    assert out.returncode == 0, out.stderr
    assert "check-args:" in out.stdout


def test_make_reproduce_refuses_an_override_a_stage_lacks_in_one_line(tmp_path):
    """bench_task exists in the benchmark stage's config only: refused before any stage runs (nothing is written
    under the scratch root)."""
    out = make("reproduce", "PROFILE=smoke", "ARGS=bench_task=ptb", env={"ARC_REPRO_ROOT": str(tmp_path)},
               timeout=300)
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    assert "'bench_task=ptb'" in errors[0] and "stage datagen" in errors[0]
    assert not any(tmp_path.iterdir())


def test_make_check_data_passes_paths_overrides():
    out = subprocess.run(["make", "-n", "--no-print-directory", "check-data", "PROFILE=paper", "paths.data=/empty",
                          "paths.weights=/w"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "-m pipeline.check_data profile=paper paths.data=/empty paths.weights=/w" in " ".join(out.split())
