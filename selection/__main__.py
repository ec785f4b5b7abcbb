"""`python -m selection [overrides]`: pick one ARC candidate with the proxy task (configs/selection.yaml)."""
import hydra
from omegaconf import DictConfig

import selection.config  # noqa: F401  (registers the schema)
from core.cli import run_stage
from core.errors import exit_on_user_error
from selection.select import select


@hydra.main(version_base="1.3", config_path="../configs", config_name="selection")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    select(cfg)


if __name__ == "__main__":
    run_stage(main)
