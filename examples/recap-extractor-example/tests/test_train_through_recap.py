"""The example extractor trains through recap.train.policy.train_policy: the same path as the shipped ones."""

from __future__ import annotations

import torch
from recap_extractor_example import FilteredBCConfig
from tensordict import TensorDict

from recap.builtins.mlp_flow import FlowMLPConfig
from recap.data import EpisodeStore, keys
from recap.data.spec import RobotSpec
from recap.plugins import load_registry
from recap.train.checkpoint import load_policy
from recap.train.policy import train_policy
from recap.train.trainer import TrainerConfig

SPEC = RobotSpec(cameras=(), state_dim=3, action_dim=2, joint_names=())


def _store(tmp_path) -> EpisodeStore:
    store = EpisodeStore.create(tmp_path / "store", SPEC)
    g = torch.Generator().manual_seed(0)
    labels = {}
    for i in range(4):
        length = 12
        steps = TensorDict(
            {
                keys.STATE: torch.randn(length, 3, generator=g),
                keys.ACTION: torch.randn(length, 2, generator=g),
                keys.IS_INTERVENTION: torch.zeros(length, dtype=torch.bool),
            },
            batch_size=[length],
        )
        meta = store.add(steps, task="reach", source="autonomous", success=i % 2 == 0)
        indicator = torch.arange(length) % 3 == 0
        labels[meta.episode_id] = {keys.ADVANTAGE: indicator.float() - 0.5, keys.INDICATOR: indicator}
    store.write_labels("example", labels, {"note": "hand-made for the test"})
    return store


def test_trains_and_saves_a_checkpoint(tmp_path):
    registry = load_registry(extra_plugins=["recap_extractor_example.plugin"], entrypoints=False)
    store = _store(tmp_path)
    result = train_policy(
        store,
        policy=FlowMLPConfig(hidden=16, depth=1, chunk_size=4, embed_dim=8),
        extractor=FilteredBCConfig(),
        trainer=TrainerConfig(steps=3, warmup_steps=1, checkpoint_every=3, log_every=1, progress=False),
        out_dir=tmp_path / "run",
        batch_size=8,
        chunk_size=4,
        label_set="example",
        registry=registry,
    )
    assert result.train.step == 3
    policy, deployment = load_policy(result.checkpoint, registry)
    assert deployment.indicator is None
    assert policy.sample_actions(_obs(), deployment.indicator).shape == (2, 4, 2)


def _obs() -> TensorDict:
    obs = TensorDict({keys.STATE: torch.zeros(2, 3)}, batch_size=[2])
    obs.set_non_tensor(keys.TASK, "reach")
    return obs
