"""What a reader of a study's runs takes from the study's own configs (configs/experiment/*.yaml) beyond the
profile: the seeds its sweep runs where the study sizes them per profile, and the paths it routes.

The appendix studies size their seeds per profile (`seed: ${study_seeds}`, the field beside their `sizes` block,
configs/experiment/n_study.yaml and metric_study.yaml), which figures.expected, reading the sweeps from the files
without a profile, cannot resolve: `study_seeds` resolves them for the profile. The metric study deploys the
candidates of paths.metric_candidates (its config sets `paths.candidates: ${paths.metric_candidates}`): `routed`
gives a reader's config the same routing, so that its runs are named, and the held-out metrics read, as it ran.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from core.bench_run import study_experiments
from core.sweep import as_dict, job_overrides


def _experiments(study: str, experiment_dir: str | None) -> list[DictConfig]:
    from core.cli import CONFIGS

    folder = Path(experiment_dir) if experiment_dir else CONFIGS / "experiment"
    return [OmegaConf.load(folder / f"{name}.yaml") for name in study_experiments(study, folder)]


def study_seeds(study: str, profile: str, experiment_dir: str | None = None) -> list[int] | None:
    """The seeds the study's sweeps run on `profile` where one interpolates them (else None: the file's own)."""
    seeds: set[int] = set()
    for node in _experiments(study, experiment_dir):
        params = OmegaConf.to_container(OmegaConf.select(node, "hydra.sweeper.params") or OmegaConf.create({}))
        raw = str(params.get("seed", ""))
        if "${" not in raw:
            continue
        file = OmegaConf.to_container(node)  # unresolved: the file alone has no profile
        value = OmegaConf.create({"profile": {"name": profile}, "sizes": file.get("sizes", {}),
                                  "study_seeds": file.get("study_seeds"), "seed": raw}).seed
        seeds |= {int(job["seed"]) for job in map(as_dict, job_overrides({"seed": value}))}
    return sorted(seeds) if seeds else None


def routed(cfg: DictConfig, study: str) -> DictConfig:
    """`cfg` with the `paths` keys the study's configs route to other keys (the metric study: paths.candidates to
    ${paths.metric_candidates}); `cfg` itself where they route none."""
    routes = {}
    for node in _experiments(study, cfg.get("experiment_configs")):
        routes.update(OmegaConf.to_container(node.get("paths") or OmegaConf.create({}), resolve=False))
    if not routes:
        return cfg
    out = cfg.copy()
    for key, value in routes.items():
        OmegaConf.update(out, f"paths.{key}", value, merge=False)
    return out
