"""A pi06-tiny policy trained on a fixed synthetic batch (flow draws included, so 1 and 2 ranks see the same
numbers), for the sharded knowledge-insulation and freezing checks. Needs the recap-pi06 plugin."""

from __future__ import annotations

from pathlib import Path

import torch
from tensordict import TensorDict

from recap.data.spec import CameraSpec, RobotSpec
from recap.data.stats import NormStats
from recap.testing.policy_suite import make_batch
from recap.train import TrainerConfig, train

SPEC = RobotSpec(
    cameras=(CameraSpec("cam_high", 16, 16),), state_dim=4, action_dim=3, env_state_dim=2, joint_names=()
)
CHUNK, GLOBAL_BATCH, STEPS = 10, 4, 3
#: Adam moves near-zero gradients by about lr whatever their size, so summation-order noise shows at ~lr/1000
#: name -> (loss terms, trainer settings)
RUNS = {
    "pi06_flow_only": (("flow",), {"activation_checkpointing": True}),
    "pi06_frozen_vision": (("flow", "fast"), {"freeze": ("vision",)}),
}


def make_policy():
    from recap_pi06.config import PI06_TINY
    from recap_pi06.policy import Pi06Policy

    batch = make_batch(SPEC, batch_size=GLOBAL_BATCH, chunk_size=CHUNK)
    stats = NormStats.compute(
        {k: batch[k].reshape(-1, batch[k].shape[-1]) for k in ("observation.state", "action")}
    )
    torch.manual_seed(0)
    policy = Pi06Policy(PI06_TINY, SPEC, stats)
    policy.fit_to_data(batch)
    return policy


def batch_fn(step: int, rank: int, world: int) -> TensorDict:
    batch = make_batch(SPEC, batch_size=GLOBAL_BATCH, chunk_size=CHUNK, seed=step)
    g = torch.Generator().manual_seed(100 + step)
    batch.set("flow_noise", torch.randn(GLOBAL_BATCH, CHUNK, SPEC.action_dim, generator=g))
    batch.set("flow_time", torch.rand(GLOBAL_BATCH, generator=g) * 0.9 + 0.05)
    return batch[torch.arange(rank, GLOBAL_BATCH, world)]


def loss_fn(policy, terms: tuple[str, ...]):
    def loss(batch: TensorDict) -> TensorDict:
        draws = TensorDict(
            {"noise": batch["flow_noise"], "time": batch["flow_time"]}, batch_size=batch.batch_size
        )
        out = policy.per_sample_loss(batch, batch["indicator"], flow_draws=draws)
        return TensorDict({f"loss_{t}": out[t].mean() for t in terms}, batch_size=[])

    return loss


def run(out_dir: Path, name: str, strategy: str = "fsdp2") -> dict[str, torch.Tensor] | None:
    terms, settings = RUNS[name]
    policy = make_policy()
    config = TrainerConfig(
        steps=STEPS, lr=1e-3, warmup_steps=0, weight_decay=0.0, progress=False, checkpoint_every=STEPS,
        strategy=strategy, **settings,
    )  # fmt: skip
    return train(policy, loss_fn(policy, terms), batch_fn, config, out_dir / name).final_weights
