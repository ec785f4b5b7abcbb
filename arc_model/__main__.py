"""`python -m arc_model [overrides]`: train one ARC candidate (arc_model.train; config configs/train_arc.yaml).

The Hydra entry point lives here, in the file Python runs, so `config_path` is resolved relative to it.
"""
import hydra
from omegaconf import DictConfig

from arc_model.train import train_candidate
from core.cli import run_stage
from core.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../configs", config_name="train_arc")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    train_candidate(cfg)


if __name__ == "__main__":
    run_stage(main)
