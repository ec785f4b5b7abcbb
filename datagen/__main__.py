"""`python -m datagen`: checkpoint-branch data generation for one Table-1 task (SPEC §2; see datagen.generate).

The Hydra entry point lives here (not in datagen.generate) because Hydra resolves `config_path` from the file of
a script run with `python -m`; spawned branch workers import this module without running it.
"""
import hydra
from omegaconf import DictConfig

from core.cli import run_stage
from core.errors import exit_on_user_error
from datagen.generate import generate_task


@hydra.main(version_base="1.3", config_path="../configs", config_name="datagen")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    generate_task(cfg)


if __name__ == "__main__":
    run_stage(main)
