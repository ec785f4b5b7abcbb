"""The kill plan of the fault test (tests/fault_injection.py, `make fault-test`, run by .ci/run)."""
from __future__ import annotations

import random

from fault_injection import kill_moments, planned_commands, stage_of

COMMANDS = [".venv/bin/python -m datagen -m profile=smoke", ".venv/bin/python -m arc_model profile=smoke dry_run=true",
            ".venv/bin/python -m arc_model -m profile=smoke", "for study in table2_cifar10 table4_ptb; do \\",
            ".venv/bin/python -m experiments.benchmark -m experiment=n_study profile=smoke  seed=0",
            ".venv/bin/python -m figures profile=smoke"]


def test_stage_of_names_the_module_and_the_study():
    assert [stage_of(c) for c in COMMANDS] == ["datagen", "arc_model", "arc_model", "benchmark",
                                               "experiments.benchmark n_study", "figures"]


def test_every_stage_gets_a_kill_and_extra_kills_go_anywhere():
    moments = kill_moments(COMMANDS, 7, random.Random(0))
    assert len(moments) == 7 and moments == sorted(moments)
    assert {stage_of(COMMANDS[i]) for i, _ in moments} == {stage_of(c) for c in COMMANDS}  # 5 stages, all hit
    assert all(0 <= u < 1 for _, u in moments)
    assert len(kill_moments(COMMANDS, 3, random.Random(0))) == 3  # fewer kills than stages: the first three


def test_a_kill_in_the_last_command_comes_in_its_first_half():
    """Nothing follows the last command to take a late kill (a run of it may also be faster than the reference's)."""
    last = [u for seed in range(200) for i, u in kill_moments(COMMANDS, 9, random.Random(seed))
            if i == len(COMMANDS) - 1]
    assert len(last) >= 200 and max(last) < 0.5 and max(last) > 0.45  # drawn over the whole first half


def test_the_smoke_pipeline_has_at_least_ten_stages_to_kill_in():
    commands = planned_commands()
    stages = {stage_of(c) for c in commands}
    assert {"datagen", "selection", "benchmark", "figures"} <= stages and len(stages) >= 10


def test_a_kill_waits_for_its_moment_but_not_past_the_start_of_the_next_command():
    """A rerun skips finished work, so a command can end long before the reference's duration of it: the kill then
    comes when make starts the next command, not later (kills for finished benchmark studies ran past the end)."""
    import threading
    import time

    from fault_injection import Make

    make = Make.__new__(Make)  # the waiting logic alone: no make process
    make.commands, make.lock, make.ended = [(0.0, "first")], threading.Condition(), None
    start = time.monotonic()
    make.wait_until(start + 0.3, 0)  # nothing else happens: the moment itself
    assert time.monotonic() - start >= 0.3

    def next_command():
        time.sleep(0.2)
        with make.lock:
            make.commands.append((0.2, "second"))
            make.lock.notify_all()

    threading.Thread(target=next_command).start()
    start = time.monotonic()
    make.wait_until(start + 120, 0)  # the moment lies beyond the command's end (no upper bound but the deadline:
    assert time.monotonic() - start < 120 and len(make.commands) == 2  # a loaded box may starve this process)
