"""App. A.1 on every profile (docs/experiments.md §10.1): the metric study trains its own five candidates with the
authors' 30% held-out split into paths.metric_candidates and deploys their best-by-metric models from there."""
from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import arc_model.config  # noqa: F401  (registers the schemas)
import experiments.config  # noqa: F401
from arc_model.stage import run_dir
from core.cli import CONFIGS
from core.config import check_paths
from core.sweep import job_overrides, sweep_params


def _compose(name: str, overrides: list[str], hydra: bool = True):
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose(name, overrides, return_hydra_config=hydra)


def test_paper_metric_study_holds_out_30_percent_in_its_own_directory():
    stage3 = _compose("train_arc", ["profile=paper"])
    mine = _compose("train_arc", ["profile=paper", "experiment=metric_candidates"])
    assert stage3.data.holdout == 0.0 and mine.data.holdout == 0.3  # §4.3's final training vs §10.1's split
    assert mine.paths.candidates == mine.paths.metric_candidates != stage3.paths.candidates
    assert [dict(o.split("=", 1) for o in j)["candidate"] for j in job_overrides(sweep_params(mine))] == \
        ["1", "2", "3", "4", "5"]
    study = _compose("benchmark", ["profile=paper", "experiment=metric_study"])
    assert study.paths.candidates == mine.paths.metric_candidates  # arc_candidate=N reads these
    assert len(job_overrides(sweep_params(study))) == 5 * 6 * 3 * 7  # 7 repeats, as the authors' logs
    check_paths(mine)  # routed, not overlapping (core.config.ROUTED)
    check_paths(study)


def test_smoke_and_mini_metric_candidates_are_stage_3s_candidates_1_to_5_again():
    """Why training them again on smoke/mini rebuilds the same models: the run directory name (the digest of
    everything that shapes the result) is that of stage 3's candidate."""
    for profile in ("smoke", "mini"):
        for candidate in (1, 5):
            ours = [f"profile={profile}", f"candidate={candidate}"]
            a = run_dir(_compose("train_arc", ours, hydra=False), "dataset", "d")
            b = run_dir(_compose("train_arc", [*ours, "experiment=metric_candidates"], hydra=False), "dataset", "d")
            assert a.name == b.name and a.parent != b.parent


def test_an_accidental_overlap_with_the_metric_candidates_is_still_refused():
    import pytest

    from core.errors import ConfigError

    cfg = _compose("train_arc", ["profile=smoke", "paths.metric_candidates=${paths.candidates}"])
    with pytest.raises(ConfigError, match="paths.candidates .* paths.metric_candidates"):
        check_paths(cfg)
    assert OmegaConf.select(cfg, "paths.metric_candidates")
