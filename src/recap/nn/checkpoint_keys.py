"""Old checkpoints keep loading after a module renames its parameters or buffers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn


def rename_on_load(module: nn.Module, renames: Mapping[str, str]) -> None:
    """Make ``module.load_state_dict`` accept state dicts written under older key names.

    ``renames`` maps an old key to its new one, both relative to ``module`` (e.g.
    ``{"norm_action_mean": "norm.action.mean"}``). A state dict already holding the new key is left alone, so
    loading new checkpoints is unaffected; strict loading still reports keys that match neither name.
    """
    table = dict(renames)

    def hook(_module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
        for old, new in table.items():
            if prefix + old in state_dict and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)

    module.register_load_state_dict_pre_hook(hook)
