"""Built-in policy "mlp-flow": the small flow-matching MLP of ``recap.testing.models``.

It ships in the core so tests, the CPU demo and third-party extractors always have a real policy to train.
"""

from __future__ import annotations

from recap.plugins import hookimpl
from recap.testing.models import FlowMLPConfig, build_flow_mlp


@hookimpl
def register_policies(register) -> None:
    register("mlp-flow", build_flow_mlp, config=FlowMLPConfig)
