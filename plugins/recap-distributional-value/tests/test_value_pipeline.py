"""Done-when: train the distributional value on a store, label it with n-step advantages, and check that a
pause (no progress for k steps) gets lower advantages than the rest and that intervention steps are positive."""

from __future__ import annotations

import pytest
import torch
from recap_distributional_value import ConvMLPConfig, DistributionalValueConfig
from tensordict import TensorDict

from recap.builtins.labeler import RecapLabelerConfig
from recap.data import EpisodeStore, keys
from recap.data.spec import CameraSpec, RobotSpec
from recap.report import plot_episode_values
from recap.train import TrainerConfig
from recap.train.labeling import label_store
from recap.train.value import train_value

SPEC = RobotSpec(cameras=(CameraSpec("cam_high", 8, 8),))
TASK = "stack the blocks"
WORK = 40  # steps of progress an episode needs
PAUSE = (10, 30)  # the crafted episode makes no progress in these steps
LOOKAHEAD = 10


def episode(progress: torch.Tensor, fails: bool = False, seed: int = 0) -> TensorDict:
    """Progress (fraction of the work done) and a failure flag are visible in the state; pixels are constant, so
    observations inside the pause are identical (nothing to memorise the pause by). ``seed`` draws what differs
    between episodes and carries no value information: a constant offset of the unused state dimensions (where
    the cube happens to lie) and the actions."""
    g = torch.Generator().manual_seed(seed)
    n = progress.shape[0]
    state = torch.zeros(n, 14)
    state[:, 2:] = 0.1 * torch.randn(1, 12, generator=g)
    state[:, 0] = progress
    state[:, 1] = float(fails)
    return TensorDict(
        {
            keys.image_key("cam_high"): torch.full((n, 8, 8, 3), 128, dtype=torch.uint8),  # no information
            keys.STATE: state,
            keys.ACTION: torch.randn(n, 14, generator=g),
            keys.IS_INTERVENTION: torch.zeros(n, dtype=torch.bool),
        },
        batch_size=[n],
    )


def test_episodes_of_different_seeds_differ():
    steady = torch.arange(WORK) / WORK
    a, b = episode(steady, seed=1), episode(steady, seed=2)
    assert not torch.equal(a[keys.STATE], b[keys.STATE]) and not torch.equal(a[keys.ACTION], b[keys.ACTION])
    assert torch.equal(a[keys.STATE][:, :2], b[keys.STATE][:, :2])  # same progress and outcome
    assert torch.equal(episode(steady, seed=1)[keys.STATE], a[keys.STATE])


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    store = EpisodeStore.create(root / "store", SPEC)
    steady = torch.arange(WORK) / WORK
    for i in range(6):
        store.add(episode(steady, seed=i), task=TASK, source="autonomous", success=True)
    for i in range(3):
        store.add(episode(steady, fails=True, seed=10 + i), task=TASK, source="autonomous", success=False)
    t = torch.arange(WORK + PAUSE[1] - PAUSE[0])
    paused = (
        torch.where(t < PAUSE[0], t, torch.where(t < PAUSE[1], PAUSE[0], t - (PAUSE[1] - PAUSE[0]))) / WORK
    )
    pause_id = store.add(episode(paused, seed=20), task=TASK, source="autonomous", success=True).episode_id
    corrected = episode(steady, seed=21)
    corrected[keys.IS_INTERVENTION][20:26] = True
    correction_id = store.add(corrected, task=TASK, source="correction", success=True).episode_id
    value = DistributionalValueConfig(
        network=ConvMLPConfig(image_size=8, channels=(8,), image_features=8, state_features=32, hidden=64)
    )
    trainer = TrainerConfig(
        steps=600, lr=3e-3, warmup_steps=30, checkpoint_every=600, log_every=100, progress=False
    )
    result = train_value(store, value=value, trainer=trainer, out_dir=root / "run", batch_size=64)
    labeler = RecapLabelerConfig(mode="nstep", lookahead=LOOKAHEAD, positive_fraction=0.3)
    report = label_store(store, result.checkpoint, labeler, progress=False)
    return store, store.read_labels(report.label_set), pause_id, correction_id, root


def test_pause_has_lower_nstep_advantages(labelled):
    store, labels, pause_id, _, _ = labelled
    adv = labels[pause_id]["advantage"]
    inside = adv[PAUSE[0] : PAUSE[1] - LOOKAHEAD].mean()  # the n-step window stays inside the pause
    outside = torch.cat([adv[: PAUSE[0] - LOOKAHEAD + 1], adv[PAUSE[1] : -LOOKAHEAD]]).mean()
    print(
        f"pause advantage {inside:.4f} vs outside {outside:.4f} (expected about -{LOOKAHEAD / 60:.3f} vs 0)"
    )
    assert inside < outside - 0.08
    ind = labels[pause_id]["indicator"][PAUSE[0] : PAUSE[1] - LOOKAHEAD]
    assert ind.float().mean() < 0.2  # pause steps are rarely labelled "good"


def test_intervention_steps_are_positive_and_values_track_progress(labelled):
    store, labels, _, correction_id, _ = labelled
    lab = labels[correction_id]
    assert lab["indicator"][20:26].all()
    assert (lab["value"].diff() > -0.02).float().mean() > 0.9  # the value rises along a successful episode
    fails = [m.episode_id for m in store.episodes(success=False)]
    assert max(labels[e]["value"].max().item() for e in fails) < -0.8


def test_plot_of_the_paused_episode(labelled):
    store, labels, pause_id, _, root = labelled
    lab = labels[pause_id]
    flags = store.load(pause_id).steps[keys.IS_INTERVENTION]
    png = plot_episode_values(lab["value"], root / "pause.png", mc_return=lab["mc_return"], is_intervention=flags,
                              advantage=lab["advantage"], indicator=lab["indicator"], title="pause")  # fmt: skip
    assert png.read_bytes()[:4] == b"\x89PNG"
