"""Done-when: on synthetic episodes with a known value, the trained estimator tracks the true normalised returns
and values failures low (trained with recap.train on CPU in seconds)."""

from __future__ import annotations

import torch
from recap_distributional_value import ConvMLPConfig, DistributionalValue, DistributionalValueConfig
from tensordict import TensorDict

from recap import rl
from recap.data import keys
from recap.data.spec import CameraSpec, RobotSpec
from recap.data.stats import NormStats
from recap.testing.value_suite import known_value_dataset
from recap.train import TrainerConfig, train

SPEC = RobotSpec(cameras=(CameraSpec("cam_high", 8, 8),))
MAX_LENGTH = 60
TASK = "hand the cube over"


def flatten(episodes) -> tuple[TensorDict, torch.Tensor]:
    rows, fails = [], []
    for steps, success in episodes:
        td = steps.exclude(keys.ACTION).clone()
        td[keys.MC_RETURN] = rl.normalized_mc_returns(steps.batch_size[0], success, MAX_LENGTH)
        rows.append(td)
        fails.append(torch.full((steps.batch_size[0],), not success))
    data = torch.cat(rows)
    data.set_non_tensor(keys.TASK, TASK)
    return data, torch.cat(fails)


def test_values_track_true_returns_and_failures_are_low(tmp_path):
    train_data, _ = flatten(known_value_dataset(3, seed=0))
    test_data, test_fails = flatten(known_value_dataset(3, seed=99))  # unseen pixel noise and action noise
    stats = NormStats.compute({keys.STATE: train_data[keys.STATE]})
    config = DistributionalValueConfig(  # the paper's 201 bins; a tiny network
        network=ConvMLPConfig(image_size=8, channels=(8,), image_features=8, state_features=32, hidden=64)
    )
    torch.manual_seed(0)
    est = DistributionalValue(config, SPEC, stats)
    n = train_data.batch_size[0]

    def batch_fn(step: int, rank: int, world: int) -> TensorDict:
        idx = torch.randint(0, n, (64,), generator=torch.Generator().manual_seed(step))
        return train_data[idx[rank::world]]

    trainer = TrainerConfig(
        steps=600, lr=3e-3, warmup_steps=30, checkpoint_every=600, log_every=100, progress=False
    )
    train(est, est.loss, batch_fn, trainer, tmp_path)
    pred = est.eval().predict(test_data.exclude(keys.MC_RETURN))["value"]
    true = test_data[keys.MC_RETURN]
    mae_bins = ((pred - true).abs().mean() / est.bin_width).item()
    print(f"held-out MAE: {mae_bins:.2f} bin widths ({(pred - true).abs().mean():.4f} in return units)")
    assert mae_bins < 5.0  # 5 bins = 0.025 of the [-1, 0] range; the untrained (uniform) net is 67 bins off
    assert pred[test_fails].max() < -0.85  # failures are valued near -1 at every step
    ok = ~test_fails
    assert pred[ok].mean() > pred[test_fails].mean() + 0.3
    # value rises along a successful episode: correlation with the true return is near 1
    assert torch.corrcoef(torch.stack([pred[ok], true[ok]]))[0, 1] > 0.97
