"""hydra.utils.instantiate with errors that name the config key instead of a deep traceback."""
from __future__ import annotations

import json
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from core.errors import ConfigError


def build(node: Any, key: str, **kwargs) -> Any:
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{key}: cannot build {getattr(node, '_target_', node)}: {cause}") from None


def constructor_node(node: Any, key: str, hint: str = "", meta: tuple[str, ...] = ("name", "sizes")) -> DictConfig:
    """The constructor arguments of a config node (everything but its `name` and `sizes`), resolved. A value
    no config gave (`???`) is a ConfigError naming `key.<field>`, followed by `hint` (where to give it)."""
    settings = OmegaConf.to_container(node, resolve=True)  # a missing value stays '???'
    out = OmegaConf.create({k: v for k, v in settings.items() if k not in meta})
    missing = sorted(OmegaConf.missing_keys(out))
    if missing:
        raise ConfigError(f"{', '.join(f'{key}.{m}' for m in missing)} has no value{': ' + hint if hint else ''}")
    return out


_TASKS: dict[str, Any] = {}
TASKS_KEPT = 4  # tasks hold their data: keep the last few per process, not all


def build_task(node: Any, key: str, device: str = "cpu", **kwargs) -> Any:
    """`build(node, key, device=device, **kwargs)` once per process: a multirun's jobs in one worker (joblib, or
    the in-process basic launcher) and datagen's branch workers reuse the task and its loaded data. Tasks are
    not changed by training (core.training.Run keeps its state in the run), so sharing them is safe."""
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    cache_key = json.dumps([container, device, kwargs], sort_keys=True, default=str)
    if cache_key not in _TASKS:
        while len(_TASKS) >= TASKS_KEPT:
            _TASKS.pop(next(iter(_TASKS)))
        _TASKS[cache_key] = build(container, key, device=device, **kwargs)
    return _TASKS[cache_key]
