"""A tiny, real value estimator registered only inside these tests (the core never imports a plugin), and a
store of synthetic episodes whose true value is known."""

from __future__ import annotations

from pathlib import Path

import attrs
import torch
from tensordict import TensorDict
from torch import nn

from recap.config import ValueEstimatorConfig
from recap.data import EpisodeStore, keys
from recap.data.spec import CameraSpec, RobotSpec
from recap.plugins import load_registry, module_plugin
from recap.testing.value_suite import known_value_dataset

SPEC = RobotSpec(cameras=(CameraSpec("cam_high", 8, 8),))
TASK = "hand the cube over"


@attrs.frozen
class TinyValueConfig(ValueEstimatorConfig):
    hidden: int = 16


class TinyValue(nn.Module):
    """V = -sigmoid(MLP(state)), trained by squared error to ``mc_return`` (a plain, non-distributional critic)."""

    def __init__(self, config: TinyValueConfig, spec: RobotSpec, stats, *, registry=None) -> None:
        # ``registry`` is the value-estimator factory's keyword; this critic has no registered parts to build
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Linear(spec.state_dim, config.hidden), nn.Tanh(), nn.Linear(config.hidden, 1)
        )

    def _value(self, obs: TensorDict) -> torch.Tensor:
        return -torch.sigmoid(self.net(obs[keys.STATE].float())[:, 0])

    def loss(self, batch: TensorDict) -> TensorDict:
        if keys.MC_RETURN not in batch:
            from recap.errors import SchemaError

            raise SchemaError("batch has no mc_return")
        return TensorDict(
            {"loss_mse": (self._value(batch) - batch[keys.MC_RETURN]).pow(2).mean()}, batch_size=[]
        )

    @torch.no_grad()
    def predict(self, obs: TensorDict) -> TensorDict:
        return TensorDict({"value": self._value(obs)}, batch_size=obs.batch_size[:1])


def registry():
    plugin = module_plugin(
        "tiny-value",
        register_value_estimators=lambda register: register("tiny", TinyValue, config=TinyValueConfig),
    )
    return load_registry(extra_plugins=[plugin], entrypoints=False)


def make_store(
    path: Path, episodes_per_kind: int = 2, unlabelled: int = 0, intervention: bool = True
) -> EpisodeStore:
    """Known-value episodes (see ``known_value_dataset``); the first episode has an operator correction at
    steps 5..9, and ``unlabelled`` extra episodes carry no success label."""
    store = EpisodeStore.create(path, SPEC)
    for i, (steps, success) in enumerate(known_value_dataset(episodes_per_kind)):
        if i == 0 and intervention:
            steps[keys.IS_INTERVENTION][5:10] = True
        store.add(
            steps,
            task=TASK,
            source="correction" if i == 0 and intervention else "autonomous",
            success=success,
        )
    for j in range(unlabelled):
        steps, _ = known_value_dataset(1, seed=500 + j)[0]
        store.add(steps, task=TASK, source="autonomous", success=None)
    return store
