"""`python -m selection -m [overrides]`: the proxy runs that score the ARC candidates (selection.select.score_run;
configs/selection.yaml). Then `python -m selection.pick` chooses the winner."""
import json

import selection.config  # noqa: F401  (registers the schema)
from core.cli import stage


def run_and_print(cfg) -> None:
    # torch and the training loop load in the job, not in the sweep's main process, which only composes and
    # launches (experiments/benchmark.py; `make bench BENCH=grid`)
    from selection.select import score_run

    row = score_run(cfg)
    if row is not None:
        print(json.dumps(row, default=str))


main = stage("selection")(run_and_print)

if __name__ == "__main__":
    main()
