"""hydra.utils.instantiate with errors that name the config key instead of a deep traceback."""
from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from core.errors import ConfigError


def build(node: Any, key: str, **kwargs) -> Any:
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{key}: cannot build {getattr(node, '_target_', node)}: {cause}") from None
