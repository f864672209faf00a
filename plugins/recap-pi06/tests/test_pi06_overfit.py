"""Overfitting four windows: flow loss falls 10x, FAST and sub-task cross-entropies go to ~0, and the decoded
sub-tasks match the data."""

import torch
from pi06_testdata import smooth_chunks
from recap_pi06.config import PI06_TINY
from recap_pi06.policy import Pi06Policy
from tensordict import NonTensorStack, TensorDict

from recap.data import keys
from recap.data.stats import NormStats
from recap.nn import draw_flow
from recap.testing.policy_suite import observation_of

SUBTASKS = ["grasp the cube", "lift it", "hand over", ""]


def _dataset(spec) -> TensorDict:
    g = torch.Generator().manual_seed(0)
    n = 4
    data = {
        keys.STATE: torch.randn(n, spec.state_dim, generator=g),
        keys.ENV_STATE: torch.randn(n, spec.env_state_dim, generator=g),
        keys.ACTION: smooth_chunks(n, 10, spec.action_dim, seed=5),
        keys.ACTION_IS_PAD: torch.zeros(n, 10, dtype=torch.bool),
    }
    for cam in spec.cameras:
        data[cam.key] = torch.randint(0, 256, (n, *cam.shape), generator=g, dtype=torch.uint8)
    batch = TensorDict(data, batch_size=[n])
    batch.set(keys.TASK, NonTensorStack(*["transfer the cube"] * n))
    batch.set(keys.SUBTASK, NonTensorStack(*SUBTASKS))
    return batch


def test_overfit_small_dataset(spec):
    batch = _dataset(spec)
    stats = NormStats.compute(
        {
            keys.STATE: batch[keys.STATE],
            keys.ENV_STATE: batch[keys.ENV_STATE],
            keys.ACTION: batch[keys.ACTION].flatten(0, 1),
        }
    )
    torch.manual_seed(0)
    policy = Pi06Policy(PI06_TINY, spec, stats)
    policy.fit_to_data(batch)
    ind = torch.ones(4, dtype=torch.bool)
    evals = [draw_flow(policy, 4, generator=torch.Generator().manual_seed(s)) for s in range(8)]

    def eval_flow() -> float:
        with torch.no_grad():
            return float(
                torch.stack([policy.per_sample_loss(batch, ind, flow_draws=d)["flow"] for d in evals]).mean()
            )

    start = eval_flow()
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=200)
    for _ in range(200):
        losses = policy.per_sample_loss(batch, ind)
        opt.zero_grad()
        sum(v.mean() for v in losses.values()).backward()
        opt.step()
        sched.step()
    end = eval_flow()
    with torch.no_grad():
        final = policy.per_sample_loss(batch, ind, flow_draws=evals[0])
    print(
        f"flow {start:.3f} -> {end:.4f}; fast CE {final['fast'].mean():.4f}; subtask CE {final['subtask'].mean():.4f}"
    )
    assert end < start / 10
    assert final["fast"].max() < 0.05 and final["subtask"].max() < 0.05
    obs = observation_of(batch).exclude(keys.SUBTASK)
    assert policy.predict_subtask(obs) == SUBTASKS
