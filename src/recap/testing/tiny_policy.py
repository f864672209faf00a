"""The built-in "mlp-flow" policy for suites and tests, built through the plugin registry.

The core never imports ``recap.builtins`` (it is a plugin like any other), so the suites reach the policy the
way every caller does: by its registered name.
"""

from __future__ import annotations

from typing import Any

from recap.data.spec import RobotSpec
from recap.data.stats import NormStats
from recap.plugins import Registry, get_registry
from recap.protocols import Policy

#: the registered name of the tiny flow-matching MLP policy
TINY_POLICY_NAME = "mlp-flow"


def mlp_flow_policy(
    spec: RobotSpec,
    stats: NormStats | None = None,
    *,
    registry: Registry | None = None,
    **config_fields: Any,
) -> Policy:
    """A fresh "mlp-flow" policy for ``spec``; ``config_fields`` are fields of its config (``hidden=32``)."""
    registry = registry or get_registry()
    config = registry.get("policy", TINY_POLICY_NAME).config(**config_fields)
    return registry.build(config, spec, stats)
