"""datagen.branches: the branch worker pool."""
from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import one_line


@pytest.mark.slow
@pytest.mark.parametrize("victim", [0, 1])
def test_a_dead_pool_worker_is_an_error_naming_the_run_and_closing_never_hangs(victim):
    from core.errors import WorkerLost
    from datagen.branches import BranchPool

    pool = BranchPool(workers=2)
    try:
        pool.pool.starmap_async(time.sleep, [(0.5,)] * 2, chunksize=1).get(120)  # both workers up
        busy = pool.pool.apply_async(time.sleep, (30,))
        time.sleep(0.5)  # one worker runs it; the other waits for a task, holding the task queue's lock
        os.kill(pool.processes[victim].pid, signal.SIGKILL)  # the busy one, or the idle one
        killed_at = time.time()
        with pytest.raises(WorkerLost) as info:
            pool.wait([busy], "svhn_vgg19bn-r007 point 3")
        assert time.time() - killed_at < 5
        one_line(str(info.value), "svhn_vgg19bn-r007 point 3", "killed by SIGKILL")
    finally:
        closing = time.time()
        pool.close()
        assert time.time() - closing < 15
