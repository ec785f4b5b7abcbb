"""Kill anywhere, lose nothing (issue 13 item 4): `make fault-test` [FAULT_ARGS="--kills 11 --seed 0"].

1. Runs `make reproduce PROFILE=smoke` once uninterrupted (the reference), noting when make starts each command.
2. Draws `--kills` moments spread over the pipeline's commands (kill_moments: each of the 11 commands of
   `make reproduce` once by default, the longest more often, at uniform times within them), then for each
   moment starts `make reproduce PROFILE=smoke` again on a second artifacts root, waits until make starts that
   command, waits that long, and SIGKILLs the whole process group (make, the stage, its pool and joblib
   workers). A command that finishes sooner on a rerun (finished work is skipped) takes the kill into a later
   one; a moment after the pipeline has finished counts as missed (and fails the test).
3. Reruns `make reproduce PROFILE=smoke` until it exits 0 (once must be enough), then compares every table file
   with the reference's: byte for byte (Tables 2-4 in every format, the per-task tables, scores, the label report),
   and results.csv / candidates.csv with their wall-time columns dropped (the only columns a kill may change).

Both roots live under a scratch directory (ARC_REPRO_ROOT; --root, default a new temporary directory), never
./artifacts. Too heavy for the test suite on a 2-core machine (about two smoke pipelines plus a partial one per
kill); it prints its wall time and exits non-zero on any difference.
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
            self.lock.notify_all()

    def wait_for_command(self, index: int) -> float | None:
        """Monotonic time at which make started command `index` (0-based), or None if make ended before."""
        with self.lock:
            while len(self.commands) <= index and self.proc.poll() is None:
                self.lock.wait(0.2)
            if len(self.commands) > index:
                return self.started + self.commands[index][0]
        return None

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
        self.log.close()
        return code


def stage_of(command: str) -> str:
    match = re.search(r"-m (\S+)", command)
    return "benchmark" if command.startswith("for study") else (match.group(1) if match else command)


def kill_moments(timeline: list[float], total: float, kills: int, rng: random.Random) -> list[tuple[int, float]]:
    """`kills` moments (command index, seconds after make starts it), spread over the commands rather than over
    time (selection takes half of smoke's time; the short commands would never be hit): every command gets one
    when kills >= commands (else the longest ones do), the rest go to the longest commands in proportion to
    their time; the moments of a command are stratified over its reference duration, start-up included."""
    durations = [end - start for start, end in zip(timeline, [*timeline[1:], total])]
    counts = [0] * len(timeline)
    for i in sorted(range(len(timeline)), key=lambda i: -durations[i])[:kills]:
        counts[i] = 1
    for _ in range(kills - sum(counts)):
        i = max(range(len(timeline)), key=lambda i: durations[i] / (counts[i] + 1))
        counts[i] += 1
    return [(i, (j + rng.random()) * durations[i] / counts[i]) for i in range(len(timeline)) for j in range(counts[i])]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=11, help="moments to kill at (default 11: every command once)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the kill moments (default: random)")
    parser.add_argument("--root", type=Path, default=None, help="scratch directory (default: a new temp dir)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rng = random.Random(seed)
    root = args.root or Path(tempfile.mkdtemp(prefix="arc-fault-"))
    root.mkdir(parents=True, exist_ok=True)
    reference, faulty, log = root / "reference", root / "faulty", root / "make.log"
    print(f"fault test: seed {seed}, {args.kills} kills, scratch {root} (make output in {log})", flush=True)
    start = time.monotonic()

    straight = Make(reference, log)
    if straight.wait() != 0:
        print(f"FAIL: the uninterrupted `make reproduce PROFILE=smoke` failed (see {log})")
        return 1
    total = time.monotonic() - straight.started
    timeline = [t for t, _ in straight.commands]
    print(f"reference: {total:.0f} s, {len(timeline)} commands", flush=True)

    moments = kill_moments(timeline, total, args.kills, rng)
    print("moments: " + ", ".join(f"{stage_of(straight.commands[i][1])} +{o:.1f} s" for i, o in moments), flush=True)

    kills, missed = [], 0
    for index, offset in moments:
        make = Make(faulty, log)
        started = make.wait_for_command(index)
        if started is not None:
            time.sleep(max(0.0, started + offset - time.monotonic()))
        running = make.kill()
        code = make.wait()
        if running is None:
            if code != 0:
                print(f"FAIL: a rerun after {len(kills)} kills exited {code} (see {log})")
                return 1
            missed += 1
            print(f"  moment {stage_of(straight.commands[index][1])} +{offset:.1f} s: the pipeline had finished")
            continue
        kills.append(stage_of(running))
        print(f"  kill {len(kills)}: in {stage_of(running)} ({running[:90]})", flush=True)

    reruns = 0
    while True:
        reruns += 1
        code = Make(faulty, log).wait()
        if code == 0:
            break
        if reruns >= 2:
            print(f"FAIL: `make reproduce PROFILE=smoke` still fails after the kills (exit {code}, see {log})")
            return 1
    problems = compare(reference / "artifacts" / "smoke", faulty / "artifacts" / "smoke")
    stages = sorted(set(kills))
    print(f"{len(kills)} kills survived ({missed} moments after the end), in {len(stages)} stages: "
          f"{', '.join(f'{s} x{kills.count(s)}' for s in stages)}; {reruns} final run(s)")
    print(f"fault test wall time: {time.monotonic() - start:.0f} s")
    for problem in problems:
        print(f"FAIL: {problem}")
    if len(kills) < args.kills:
        print(f"FAIL: only {len(kills)} of {args.kills} kills landed before the pipeline finished")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
