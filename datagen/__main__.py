"""`python -m datagen`: checkpoint-branch data generation for one Table-1 task (docs/experiments.md §2; see datagen.generate).

Spawned branch workers import this module without running it.
"""
from core.cli import stage
from datagen.generate import generate_task

main = stage("datagen")(generate_task)

if __name__ == "__main__":
    main()
