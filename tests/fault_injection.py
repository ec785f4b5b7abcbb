"""Kill anywhere, lose nothing: `make fault-test` [FAULT_ARGS="--kills 12 --seed 0"].

1. Lists the commands of `make reproduce PROFILE=smoke` (`make -n`) and draws the kill moments: every stage (the
   distinct modules those commands run, a benchmark study apart) gets one, more kills go to random commands, and a
   moment is (command, fraction u of that command's uninterrupted duration).
2. Runs `make reproduce PROFILE=smoke` uninterrupted (the reference) in one artifacts root and, once it is past
   the first moment's command, beside it (the stages are single-threaded, so the two share the 2 cores) the kill
   sequence in a second root: for each moment, start `make reproduce PROFILE=smoke`, wait until make starts that
   command, then u x (the reference's duration of that command, waiting for the reference to finish it if need
   be), and SIGKILL the whole process group (make, the stage, its pool and joblib workers). A command that finishes
   sooner on a rerun (finished work is skipped: a finished benchmark study reruns in seconds) takes the kill to the
   start of the next one; a moment after the pipeline has finished fails the test.
3. Reruns `make reproduce PROFILE=smoke` until it exits 0 (once must be enough), then compares every table file
   with the reference's: byte for byte (Tables 2-4 in every format, the per-task tables, scores, the label report),
   and results.csv / candidates.csv with their wall-time columns dropped (the only columns a kill may change).

Both roots live under a scratch directory (ARC_REPRO_ROOT; --root, default a new temporary directory), never
./artifacts. `.ci/run` runs it after the suite (it costs about one smoke pipeline plus a partial one per kill,
too much for the suite's 15 minutes); it prints its wall time and exits non-zero on any difference.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"^(\S*/python(3(\.\d+)?)? -m \S+|for study in)")  # what make echoes as it starts a command
EXACT = ["figures/**/tables*.md", "figures/**/tables.tex", "figures/**/cells.csv", "figures/**/ranks.csv",
         "benchmark/**/table_*.csv", "selection/scores.csv", "dataset/report.txt", "dataset/report.csv"]
TIMED = {"benchmark/**/results.csv": ["wall_seconds"], "candidates/candidates.csv": ["seconds"]}


class Make:
    """`make reproduce PROFILE=smoke` in its own process group, its output read line by line with timestamps."""

    def __init__(self, root: Path, log: Path):
        env = {**os.environ, "ARC_REPRO_ROOT": str(root), "PYTHONHASHSEED": "0"}
        self.log = open(log, "a")  # noqa: SIM115 (closed in wait)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "reproduce",
                                      "PROFILE=smoke"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        self.ended: float | None = None
        self.commands: list[tuple[float, str]] = []  # (seconds since start, command line) as make starts them
        self.lock = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.log.write(line)
            if COMMAND.match(line):
                with self.lock:
                    self.commands.append((time.monotonic() - self.started, line.strip()))
                    self.lock.notify_all()
        with self.lock:
            self.ended = time.monotonic()  # make's output closed: it has exited
            self.lock.notify_all()

    def wait_for_command(self, index: int) -> float | None:
        """Monotonic time at which make started command `index` (0-based), or None if make ended before."""
        with self.lock:
            while len(self.commands) <= index and self.proc.poll() is None:
                self.lock.wait(0.2)
            if len(self.commands) > index:
                return self.started + self.commands[index][0]
        return None

    def wait_until(self, deadline: float, index: int) -> None:
        """Until `deadline` (monotonic time), or sooner once make has started the command after `index`, or exited."""
        with self.lock:
            while time.monotonic() < deadline and len(self.commands) < index + 2 and self.ended is None:
                self.lock.wait(min(0.2, max(0.0, deadline - time.monotonic())))

    def kill(self) -> str | None:
        """SIGKILL the process group; the command that was running, or None if make had already ended."""
        if self.proc.poll() is not None:
            return None
        with self.lock:
            running = self.commands[-1][1] if self.commands else "(make start-up)"
        os.killpg(self.proc.pid, signal.SIGKILL)
        return running

    def wait(self) -> int:
        code = self.proc.wait()
        self.reader.join(30)
        if not self.log.closed:
            self.log.close()
        return code


def stage_of(command: str) -> str:
    """What a command runs: its module, a benchmark study apart ("benchmark" is make's loop over Tables 2-4)."""
    if command.startswith("for study"):
        return "benchmark"
    match = re.search(r"-m (\S+)", command)
    study = re.search(r"experiment=(\S+)", command)
    return (match.group(1) if match else command) + (f" {study.group(1)}" if study else "")


def planned_commands() -> list[str]:
    """The commands `make reproduce PROFILE=smoke` will start, in order (`make -n` echoes them, running nothing)."""
    out = subprocess.run(["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "reproduce",
                          "PROFILE=smoke"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if COMMAND.match(line)]


# A kill that comes late in a command moves on to the next one, but nothing follows the last command, and the
# faulty run often reaches it alone, after the reference (which it then shares the cores with no more) has
# finished: measured, figures at 97% of the reference's duration had finished (CI, seed 546881). Moments in the
# last command fall in its first half.
LAST_COMMAND_SHARE = 0.5


def kill_moments(commands: list[str], kills: int, rng: random.Random) -> list[tuple[int, float]]:
    """`kills` moments (command index, fraction of its duration), in pipeline order: one in a random command of
    each stage (the first `kills` stages if there are more), the rest in random commands; in the last command the
    fraction is below LAST_COMMAND_SHARE."""
    stages: dict[str, list[int]] = {}
    for i, command in enumerate(commands):
        stages.setdefault(stage_of(command), []).append(i)
    picked = [rng.choice(indices) for indices in list(stages.values())[:kills]]
    picked += [rng.randrange(len(commands)) for _ in range(kills - len(picked))]
    return sorted((i, rng.random() * (LAST_COMMAND_SHARE if i == len(commands) - 1 else 1.0)) for i in picked)


def table_files(artifacts: Path) -> list[Path]:
    return sorted({p.relative_to(artifacts) for pattern in [*EXACT, *TIMED] for p in artifacts.glob(pattern)})


def compare(reference: Path, faulty: Path) -> list[str]:
    import pandas as pd

    problems = []
    files = table_files(reference)
    if not files:
        return [f"no table files under {reference}"]
    for rel in files:
        a, b = reference / rel, faulty / rel
        if not b.is_file():
            problems.append(f"missing after the kills: {rel}")
            continue
        timed = next((cols for pattern, cols in TIMED.items() if rel.match(pattern.replace("**/", "*/"))
                      or str(rel) == pattern), None)
        if timed is None:
            if a.read_bytes() != b.read_bytes():
                problems.append(f"differs: {rel}")
        else:
            left, right = (pd.read_csv(p).drop(columns=timed, errors="ignore") for p in (a, b))
            if not left.equals(right):
                problems.append(f"differs (timing columns {timed} dropped): {rel}")
    print(f"compared {len(files)} table files: "
          f"{sum(1 for f in files if not any(f.match(p.replace('**/', '*/')) for p in TIMED))} byte for byte")
    return problems


# what the smoke pipeline must render besides the tables: the appendix studies' figures (App. A.1, A.5) and their
# REPORT.md sections, which `make reproduce` runs on every profile
FIGURES = ["figures/metric_study/fig07_metric_study.png", "figures/n_study/fig14_n_study.png"]


def missing_figures(artifacts: Path) -> list[str]:
    problems = [f"not rendered by the reference: {rel}" for rel in FIGURES if not (artifacts / rel).is_file()]
    report = (artifacts / "REPORT.md").read_text() if (artifacts / "REPORT.md").is_file() else ""
    problems += [f"REPORT.md lacks {rel}" for rel in FIGURES if rel not in report]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=None,
                        help="moments to kill at (default: one per stage, at least 10)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the kill moments (default: random)")
    parser.add_argument("--root", type=Path, default=None, help="scratch directory (default: a new temp dir)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)
    commands = planned_commands()
    kills_wanted = args.kills or max(10, len({stage_of(c) for c in commands}))
    root = args.root or Path(tempfile.mkdtemp(prefix="arc-fault-"))
    root.mkdir(parents=True, exist_ok=True)
    reference, faulty = root / "reference", root / "faulty"
    print(f"fault test: seed {seed}, {kills_wanted} kills over {len(commands)} commands, scratch {root} "
          f"(make output in {root}/reference.log and faulty.log)", flush=True)
    start = time.monotonic()
    moments = kill_moments(commands, kills_wanted, rng)
    print("moments: " + ", ".join(f"{stage_of(commands[i])} at {100 * u:.0f}%" for i, u in moments), flush=True)

    straight = Make(reference, root / "reference.log")  # runs while the kills below happen

    def reference_duration(index: int) -> float | None:
        """Seconds the reference spent in command `index`, once it is past it; None if it failed."""
        if straight.wait_for_command(index + 1) is None:
            straight.reader.join(30)  # make has exited: every line it printed is read
        with straight.lock:
            times = [t for t, _ in straight.commands]
        if len(times) > index + 1:
            return times[index + 1] - times[index]
        if straight.proc.wait() != 0 or len(times) <= index or straight.ended is None:
            return None
        return straight.ended - straight.started - times[index]

    # the first kill needs the reference's duration of its command before the faulty run gets there: start the kill
    # sequence once the reference is past that command (later ones lag behind the reference: they rerun)
    if moments and reference_duration(moments[0][0]) is None:
        print(f"FAIL: the uninterrupted `make reproduce PROFILE=smoke` failed (see {root}/reference.log)")
        return 1
    kills, missed = [], 0
    for index, fraction in moments:
        make = Make(faulty, root / "faulty.log")
        started = make.wait_for_command(index)
        duration = reference_duration(index)
        if duration is None:
            make.kill()
            make.wait()
            print(f"FAIL: the uninterrupted `make reproduce PROFILE=smoke` failed (see {root}/reference.log)")
            return 1
        if started is not None:  # a rerun skips finished work: a command may end long before the reference's
            make.wait_until(started + fraction * duration, index)  # duration, and the kill then falls at the
            # start of the next command instead of drifting on (past the pipeline's end, for the last moments)
        running = make.kill()
        code = make.wait()
        if running is None:
            if code != 0:
                print(f"FAIL: a rerun after {len(kills)} kills exited {code} (see {root}/faulty.log)")
                return 1
            missed += 1
            print(f"  moment {stage_of(commands[index])} at {100 * fraction:.0f}%: the pipeline had finished")
            continue
        kills.append(stage_of(running))
        print(f"  kill {len(kills)}: in {stage_of(running)} ({running[:90]})", flush=True)

    reruns = 0
    while True:
        reruns += 1
        code = Make(faulty, root / "faulty.log").wait()
        if code == 0:
            break
        if reruns >= 2:
            print(f"FAIL: `make reproduce PROFILE=smoke` still fails after the kills (exit {code}, see "
                  f"{root}/faulty.log)")
            return 1
    if straight.wait() != 0:
        print(f"FAIL: the uninterrupted `make reproduce PROFILE=smoke` failed (see {root}/reference.log)")
        return 1
    print(f"reference: {straight.ended - straight.started:.0f} s; kills and reruns: "
          f"{time.monotonic() - start:.0f} s", flush=True)
    problems = compare(reference / "artifacts" / "smoke", faulty / "artifacts" / "smoke")
    problems += missing_figures(reference / "artifacts" / "smoke")
    stages = sorted(set(kills))
    print(f"{len(kills)} kills survived ({missed} moments after the end), in {len(stages)} stages: "
          f"{', '.join(f'{s} x{kills.count(s)}' for s in stages)}; {reruns} final run(s)")
    print(f"fault test wall time: {time.monotonic() - start:.0f} s")
    for problem in problems:
        print(f"FAIL: {problem}")
    if len(kills) < kills_wanted:
        print(f"FAIL: only {len(kills)} of {kills_wanted} kills landed before the pipeline finished")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
